import { describe, expect, it } from 'vitest';
import { formatCpu, formatMib } from './usageFigures';

describe('usage figures', () => {
  it('formats resident memory in MiB, large figures in GiB', () => {
    expect(formatMib(183 * 1024 * 1024 + 1000)).toBe('183 MiB');
    expect(formatMib(12 * 1024 * 1024 * 1024)).toBe('12.0 GiB');
    expect(formatCpu(3.14159)).toBe('3.1%');
    expect(formatCpu(187.6)).toBe('188%');
  });
});
