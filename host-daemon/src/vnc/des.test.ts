import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Des, vncAuthKey, vncAuthResponse } from './des';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DES', () => {
  it.each([
    // The worked example of FIPS 46 tutorials (J. Orlin Grabbe) and the classic "Now is t" style vectors.
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
    ['0e329232ea6d0d73', '8787878787878787', '0000000000000000'],
    // NBS SP 500-20 variable-plaintext and all-zero / all-one corners.
    ['0101010101010101', '8000000000000000', '95f8a5e5dd31d900'],
    ['0000000000000000', '0000000000000000', '8ca64de9c1b123a7'],
    ['ffffffffffffffff', 'ffffffffffffffff', '7359b2163e4edc58'],
    ['0123456789abcdef', '4e6f772069732074', '3fa40e8a984d4815'],
  ])('key %s encrypts %s to %s', (key, plain, cipher) => {
    expect(toHex(new Des(hex(key)).encryptBlock(hex(plain)))).toBe(cipher);
  });

  it('agrees with OpenSSL (3DES with K1 = K2 = K3 is single DES) on random keys and blocks', () => {
    for (let i = 0; i < 200; i++) {
      const key = crypto.randomBytes(8);
      const data = crypto.randomBytes(16);
      const reference = crypto.createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null);
      reference.setAutoPadding(false);
      const expected = Buffer.concat([reference.update(data), reference.final()]);
      expect(toHex(new Des(key).encryptEcb(data))).toBe(expected.toString('hex'));
    }
  });

  it('refuses keys and blocks of the wrong size', () => {
    expect(() => new Des(new Uint8Array(7))).toThrow(/8 bytes/);
    expect(() => new Des(new Uint8Array(8)).encryptBlock(new Uint8Array(9))).toThrow(/8 bytes/);
    expect(() => new Des(new Uint8Array(8)).encryptEcb(new Uint8Array(12))).toThrow(/whole 8-byte blocks/);
  });
});

describe('VncAuth', () => {
  it("reverses each key byte's bits: TigerVNC's obfuscation key 23,82,107,6,35,78,88,7 is DES key e84ad660c4721ae0", () => {
    expect(toHex(vncAuthKey(String.fromCharCode(23, 82, 107, 6, 35, 78, 88, 7)))).toBe('e84ad660c4721ae0');
  });

  it('uses only the first 8 bytes of the password and pads shorter ones with zeros', () => {
    expect(toHex(vncAuthKey('abcdefghXYZ'))).toBe(toHex(vncAuthKey('abcdefgh')));
    expect(toHex(vncAuthKey('ab'))).toBe('8646000000000000');
  });

  it('answers a challenge block by block with the derived key', () => {
    const challenge = crypto.randomBytes(16);
    const des = new Des(vncAuthKey('s3cret!x'));
    const response = vncAuthResponse('s3cret!x', challenge);
    expect(toHex(response.subarray(0, 8))).toBe(toHex(des.encryptBlock(challenge.subarray(0, 8))));
    expect(toHex(response.subarray(8))).toBe(toHex(des.encryptBlock(challenge.subarray(8))));
    expect(() => vncAuthResponse('x', new Uint8Array(8))).toThrow(/16 bytes/);
  });
});
