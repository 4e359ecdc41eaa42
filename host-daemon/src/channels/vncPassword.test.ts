import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readVncPassword } from './channelService';

describe('readVncPassword', () => {
  const dirs: string[] = [];
  const stateDirWith = (content: string | null): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firedeck-vnc-secrets-'));
    dirs.push(dir);
    fs.mkdirSync(path.join(dir, 'vms', 'vm-0123456789abcdef'), { recursive: true });
    if (content !== null) {
      fs.writeFileSync(path.join(dir, 'vms', 'vm-0123456789abcdef', 'secrets.json'), content, { mode: 0o600 });
    }
    return dir;
  };

  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it("reads the VM's password from its secrets file", () => {
    const vncPassword = randomBytes(6).toString('base64url');
    const dir = stateDirWith(JSON.stringify({ vncPassword, agentToken: 't' }));
    expect(readVncPassword(path.join(dir, 'vms', 'vm-0123456789abcdef'), 'desk')).toBe(vncPassword);
  });

  it('says the VM has no VNC password when the file is missing', () => {
    const dir = stateDirWith(null);
    expect(() => readVncPassword(path.join(dir, 'vms', 'vm-0123456789abcdef'), 'desk')).toThrow(
      expect.objectContaining({ kind: 'invalid_state', message: 'VM desk has no VNC password' }),
    );
  });

  it('refuses a malformed file without echoing it', () => {
    const dir = stateDirWith('{"vncPassword": 42, "secret": "do-not-print"}');
    let message = '';
    try {
      readVncPassword(path.join(dir, 'vms', 'vm-0123456789abcdef'), 'desk');
    } catch (err) {
      message = (err as Error).message;
      expect(err).toMatchObject({ kind: 'invalid_state' });
    }
    expect(message).toMatch(/holds no valid VNC password/);
    expect(message).not.toContain('do-not-print');
  });
});
