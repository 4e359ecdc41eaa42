/**
 * DES (FIPS 46-3) encryption of single blocks, for VNC authentication only. Node's OpenSSL 3 ships without
 * single DES (`des-ecb` lives in the legacy provider), and VncAuth is still the only password scheme TigerVNC's
 * Xvnc and noVNC share. Written for clarity, not speed: a connection encrypts two blocks.
 */

// Tables as printed in FIPS 46-3 (1-based bit positions, bit 1 = the most significant bit of the first byte).
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24,
  16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31,
  23, 15, 7,
] as const;

const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21, 20, 21, 22,
  23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
] as const;

const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
] as const;

const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, 63, 55,
  47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
] as const;

const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30,
  40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
] as const;

const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1] as const;

/** S1..S8, each 4 rows of 16. */
const S: readonly (readonly number[])[] = [
  [
    14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, 4, 1,
    14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
  ],
  [
    15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, 0, 14,
    7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
  ],
  [
    10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, 13, 6,
    4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
  ],
  [
    7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, 10, 6,
    9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
  ],
  [
    2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, 4, 2, 1,
    11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
  ],
  [
    12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, 9, 14,
    15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
  ],
  [
    4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, 1, 4,
    11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
  ],
  [
    13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, 7, 11,
    4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
  ],
];

/** The final permutation is the inverse of IP; derived rather than typed in a second time. */
const FP: readonly number[] = (() => {
  const inverse = new Array<number>(64);
  IP.forEach((from, to) => (inverse[from - 1] = to + 1));
  return inverse;
})();

type Bits = Uint8Array;

function toBits(bytes: Uint8Array): Bits {
  const bits = new Uint8Array(bytes.length * 8);
  for (let i = 0; i < bits.length; i++) bits[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  return bits;
}

function fromBits(bits: Bits): Uint8Array {
  const bytes = new Uint8Array(bits.length / 8);
  for (let i = 0; i < bits.length; i++) bytes[i >> 3]! |= bits[i]! << (7 - (i & 7));
  return bytes;
}

function permute(bits: Bits, table: readonly number[]): Bits {
  const out = new Uint8Array(table.length);
  for (let i = 0; i < table.length; i++) out[i] = bits[table[i]! - 1]!;
  return out;
}

function rotateLeft(half: Bits, by: number): Bits {
  const out = new Uint8Array(half.length);
  for (let i = 0; i < half.length; i++) out[i] = half[(i + by) % half.length]!;
  return out;
}

function subkeys(key: Uint8Array): Bits[] {
  const cd = permute(toBits(key), PC1);
  let c = cd.subarray(0, 28);
  let d = cd.subarray(28, 56);
  const keys: Bits[] = [];
  for (const shift of SHIFTS) {
    c = rotateLeft(c, shift);
    d = rotateLeft(d, shift);
    const joined = new Uint8Array(56);
    joined.set(c, 0);
    joined.set(d, 28);
    keys.push(permute(joined, PC2));
  }
  return keys;
}

function feistel(right: Bits, subkey: Bits): Bits {
  const x = permute(right, E);
  for (let i = 0; i < 48; i++) x[i]! ^= subkey[i]!;
  const out = new Uint8Array(32);
  for (let box = 0; box < 8; box++) {
    const b = x.subarray(box * 6, box * 6 + 6);
    const row = (b[0]! << 1) | b[5]!;
    const col = (b[1]! << 3) | (b[2]! << 2) | (b[3]! << 1) | b[4]!;
    const v = S[box]![row * 16 + col]!;
    for (let bit = 0; bit < 4; bit++) out[box * 4 + bit] = (v >> (3 - bit)) & 1;
  }
  return permute(out, P);
}

/** DES with one 8-byte key (parity bits ignored, as DES does). */
export class Des {
  private readonly keys: Bits[];

  constructor(key: Uint8Array) {
    if (key.length !== 8) throw new RangeError(`a DES key is 8 bytes, not ${key.length}`);
    this.keys = subkeys(key);
  }

  encryptBlock(block: Uint8Array): Uint8Array {
    if (block.length !== 8) throw new RangeError(`a DES block is 8 bytes, not ${block.length}`);
    const ip = permute(toBits(block), IP);
    let left: Bits = ip.slice(0, 32);
    let right: Bits = ip.slice(32, 64);
    for (const k of this.keys) {
      const f = feistel(right, k);
      for (let i = 0; i < 32; i++) f[i]! ^= left[i]!;
      left = right;
      right = f;
    }
    const preoutput = new Uint8Array(64);
    preoutput.set(right, 0);
    preoutput.set(left, 32);
    return fromBits(permute(preoutput, FP));
  }

  /** ECB over whole blocks: VNC never pads, so a partial block is a caller error. */
  encryptEcb(data: Uint8Array): Uint8Array {
    if (data.length % 8 !== 0) throw new RangeError(`DES-ECB input must be whole 8-byte blocks, got ${data.length}`);
    const out = new Uint8Array(data.length);
    for (let off = 0; off < data.length; off += 8) out.set(this.encryptBlock(data.subarray(off, off + 8)), off);
    return out;
  }
}

function reverseBits(byte: number): number {
  let r = 0;
  for (let bit = 0; bit < 8; bit++) r |= ((byte >> bit) & 1) << (7 - bit);
  return r;
}

/**
 * The DES key VncAuth derives from a password: its first 8 bytes (UTF-8, zero-padded), each byte's bits
 * reversed. The reversal is an accident of the original VNC code (its DES took keys least significant bit
 * first) that every VNC server and client has had to copy since.
 */
export function vncAuthKey(password: string): Uint8Array {
  const key = new Uint8Array(8);
  key.set(new TextEncoder().encode(password).subarray(0, 8));
  return key.map(reverseBits);
}

/** VncAuth (RFB security type 2): the 16-byte challenge encrypted with the password's key, DES-ECB. */
export function vncAuthResponse(password: string, challenge: Uint8Array): Uint8Array {
  if (challenge.length !== 16) throw new RangeError(`a VncAuth challenge is 16 bytes, not ${challenge.length}`);
  return new Des(vncAuthKey(password)).encryptEcb(challenge);
}
