/** A human figure for resident memory: MiB below 10 GiB (what a VM's configured size is given in), else GiB. */
export function formatMib(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 10 * 1024) return `${(mib / 1024).toFixed(1)} GiB`;
  return `${Math.round(mib)} MiB`;
}

export function formatCpu(percent: number): string {
  return `${percent < 10 ? percent.toFixed(1) : Math.round(percent)}%`;
}
