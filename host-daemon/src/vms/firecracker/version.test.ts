import { describe, expect, it } from 'vitest';
import { atLeast, MINIMUM_FIRECRACKER, parseRelease, SERIAL_RATE_LIMITER_SINCE } from './version';

describe('Firecracker releases', () => {
  it('reads what --version prints (main.rs: "Firecracker v{}\\n", jailer "Jailer v{}\\n")', () => {
    expect(parseRelease('Firecracker v1.16.1\n\n', 'Firecracker')).toEqual({
      major: 1,
      minor: 16,
      patch: 1,
      text: 'Firecracker v1.16.1',
    });
    expect(parseRelease('Jailer v1.17.0-dev\n\n', 'Jailer')).toMatchObject({ major: 1, minor: 17, patch: 0 });
    expect(parseRelease('Jailer v1.16.1\n', 'Firecracker')).toBeNull();
    expect(parseRelease('QEMU emulator version 7.2.0\n', 'Firecracker')).toBeNull();
  });

  it('draws the lines at 1.14.2 (serial FIFO opened read-write) and 1.16.0 (serial rate limiter)', () => {
    const v = (text: string) => parseRelease(`Firecracker v${text}`, 'Firecracker')!;
    expect(atLeast(v('1.14.1'), MINIMUM_FIRECRACKER)).toBe(false);
    expect(atLeast(v('1.13.9'), MINIMUM_FIRECRACKER)).toBe(false);
    expect(atLeast(v('1.14.2'), MINIMUM_FIRECRACKER)).toBe(true);
    expect(atLeast(v('2.0.0'), MINIMUM_FIRECRACKER)).toBe(true);
    expect(atLeast(v('1.15.1'), SERIAL_RATE_LIMITER_SINCE)).toBe(false);
    expect(atLeast(v('1.16.0'), SERIAL_RATE_LIMITER_SINCE)).toBe(true);
  });
});
