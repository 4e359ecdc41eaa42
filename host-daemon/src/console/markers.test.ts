import { describe, expect, it } from 'vitest';
import { hostKeyVerdict, MarkerScanner, parseMarker } from './markers';

const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

describe('parseMarker', () => {
  it('recognises the guest contract markers', () => {
    expect(parseMarker('FIREDECK-READY vm')).toEqual({ type: 'ready', what: 'vm' });
    expect(parseMarker('FIREDECK-READY sshd\r')).toEqual({ type: 'ready', what: 'sshd' });
    expect(parseMarker('[   12.3] rc: FIREDECK-READY vnc')).toEqual({ type: 'ready', what: 'vnc' });
    expect(parseMarker(`FIREDECK-HOSTKEY ssh-ed25519 ${KEY}`)).toEqual({ type: 'hostkey', key: `ssh-ed25519 ${KEY}` });
  });

  it('ignores look-alikes', () => {
    expect(parseMarker('echo FIREDECK-READY vm; do-something')).toBeNull();
    expect(parseMarker('XFIREDECK-READY vm')).toBeNull();
    expect(parseMarker('FIREDECK-READY VM')).toBeNull();
    expect(parseMarker('FIREDECK-READY ')).toBeNull();
    expect(parseMarker('FIREDECK-HOSTKEY ssh-dss AAAAB3NzaC1kc3MAAACBAP')).toBeNull();
    expect(parseMarker('FIREDECK-HOSTKEY ssh-ed25519 not base64!')).toBeNull();
  });
});

describe('MarkerScanner', () => {
  it('finds markers split across chunks, not partial lines', () => {
    const s = new MarkerScanner();
    expect(s.push(Buffer.from('boot...\nFIREDECK-RE'))).toEqual([]);
    expect(s.push(Buffer.from('ADY v'))).toEqual([]);
    expect(s.push(Buffer.from('m\r\nFIREDECK-READY sshd\n'))).toEqual([
      { type: 'ready', what: 'vm' },
      { type: 'ready', what: 'sshd' },
    ]);
    expect(s.lastLines().slice(-2)).toEqual(['FIREDECK-READY vm', 'FIREDECK-READY sshd']);
  });

  it('bounds a line without newline and never treats its tail as a marker', () => {
    const s = new MarkerScanner(1024, 5);
    s.push(Buffer.alloc(10_000, 0x78));
    expect(s.push(Buffer.from(' FIREDECK-READY vm\n'))).toEqual([]);
    expect(s.push(Buffer.from('FIREDECK-READY vm\n'))).toEqual([{ type: 'ready', what: 'vm' }]);
    for (let i = 0; i < 20; i++) s.push(Buffer.from(`l${i}\n`));
    expect(s.lastLines()).toEqual(['l15', 'l16', 'l17', 'l18', 'l19']);
  });
  it('keeps no control characters in the last lines (they end up in errors shown on terminals)', () => {
    const s = new MarkerScanner();
    s.push(Buffer.from('\u001b[31mred\u001b[0m \u001b]0;title\u0007osc \u009bc1 bell\u0007 tab\tok\r\n'));
    // What is left of an OSC sequence is plain text: it can no longer set a title or anything else.
    expect(s.lastLines()).toEqual(['red ]0;titleosc c1 bell tab\tok']);
  });
});

describe('hostKeyVerdict', () => {
  const OTHER = `ssh-ed25519 ${KEY.slice(0, -4)}AAAA`;
  it('pins the first key of a boot and refuses another one later', () => {
    expect(hostKeyVerdict(null, `ssh-ed25519 ${KEY}`)).toBe('pin');
    expect(hostKeyVerdict(undefined, `ssh-ed25519 ${KEY}`)).toBe('pin');
    expect(hostKeyVerdict(`ssh-ed25519 ${KEY}`, `ssh-ed25519 ${KEY}`)).toBe('same');
    expect(hostKeyVerdict(`ssh-ed25519 ${KEY}`, OTHER)).toBe('refused');
  });
});
