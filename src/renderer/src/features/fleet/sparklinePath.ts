/**
 * The SVG path of a sparkline: `values` spread evenly over `width`, 0 at the bottom and `max` at the top of
 * `height` (values above `max` are clipped to the top). Coordinates are rounded to 0.1 px to keep the strings
 * short; '' when there is nothing to draw. A single value draws a flat line across the whole width.
 */
export function sparklinePath(values: readonly number[], width: number, height: number, max: number): string {
  if (values.length === 0 || width <= 0 || height <= 0) return '';
  const top = max > 0 ? max : 1;
  const y = (v: number): string => round(height - (Math.min(Math.max(v, 0), top) / top) * height);
  if (values.length === 1) return `M0 ${y(values[0]!)}H${round(width)}`;
  const step = width / (values.length - 1);
  let d = '';
  for (let i = 0; i < values.length; i++) d += `${i === 0 ? 'M' : 'L'}${round(i * step)} ${y(values[i]!)}`;
  return d;
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}
