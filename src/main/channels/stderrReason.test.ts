import { describe, expect, it } from 'vitest';
import { stderrReason } from './stderrReason';

describe('stderr reason', () => {
  it("prefers firedeckd's own message over usage text after it", () => {
    const stderr = 'firedeckd: unknown command "vnc"\nusage: firedeckd <command>\n  --run-dir DIR   volatile state\n';
    expect(stderrReason(stderr)).toBe('firedeckd: unknown command "vnc"');
    expect(stderrReason('firedeckd dial-stdio: firedeckd is not running\n')).toBe(
      'firedeckd dial-stdio: firedeckd is not running',
    );
  });
  it('falls back to the last line, and to null for silence', () => {
    expect(stderrReason('sh: 1: firedeckd: not found\n')).toBe('sh: 1: firedeckd: not found');
    expect(stderrReason('\n  \n')).toBeNull();
  });
});
