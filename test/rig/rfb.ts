import fs from 'node:fs';
import type { Duplex, Readable, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { vncAuthResponse } from '../../host-daemon/src/vnc/des';
import { FiredeckError } from '../../src/shared/errors';

/**
 * A small RFB 3.8 client (RFC 6143) for tests that act as a person at a VNC desktop: keys in, screenshots out.
 * It speaks over any byte stream: a TCP socket to Xvnc (VncAuth), or the stdin/stdout of `firedeckd vnc <vm>`,
 * whose proxy offers security type None (host-daemon/src/vnc/rfbProxy.ts).
 */
export interface RfbClient {
  readonly width: number;
  readonly height: number;
  /** The desktop name from ServerInit. */
  readonly name: string;
  /** Types printable ASCII (and \n as Return, \t as Tab), holding Shift for the characters a US layout shifts. */
  typeText(text: string): Promise<void>;
  /** Presses and releases one named key. */
  key(name: RfbKeyName): Promise<void>;
  /** Moves the pointer and sets the buttons (bit 0 left, 1 middle, 2 right). */
  pointer(x: number, y: number, buttons?: number): Promise<void>;
  /** A full (non-incremental) framebuffer update in raw encoding, written to `file` as an RGB PNG. */
  screenshot(file: string, timeoutMs?: number): Promise<{ width: number; height: number }>;
  /** A full (non-incremental) framebuffer update in raw encoding; resolves with the bytes it took on the wire. */
  fullUpdate(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export type RfbStream = Duplex | { input: Readable; output: Writable };

export interface RfbConnectOptions {
  /** For VncAuth; without it only security type None is accepted. Never logged. */
  password?: string;
  timeoutMs?: number;
  /** Named in errors, e.g. "Xvnc :42" or "firedeckd vnc". */
  peer?: string;
}

export const RFB_KEYSYMS = {
  Tab: 0xff09,
  Return: 0xff0d,
  BackSpace: 0xff08,
  Escape: 0xff1b,
  Delete: 0xffff,
  Home: 0xff50,
  Left: 0xff51,
  Up: 0xff52,
  Right: 0xff53,
  Down: 0xff54,
  End: 0xff57,
} as const;
export type RfbKeyName = keyof typeof RFB_KEYSYMS;

const SHIFT_L = 0xffe1;
/** Characters a US keyboard types with Shift (X servers map a keysym to a key and a level; Shift picks level 2). */
const SHIFTED = new Set('~!@#$%^&*()_+{}|:"<>?ABCDEFGHIJKLMNOPQRSTUVWXYZ');

const SECURITY_NONE = 1;
const SECURITY_VNC_AUTH = 2;
const MAX_REASON = 4096;
const MAX_NAME = 4096;

/** Buffers the server's bytes and hands out exact counts (joined once per read, not once per chunk). */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    input: Readable,
    private readonly peer: string,
  ) {
    input.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.wake?.();
    });
    const ended = (): void => {
      this.failure ??= new FiredeckError('disconnected', `${this.peer} closed the connection`);
      this.wake?.();
    };
    input.once('end', ended);
    input.once('close', ended);
    input.on('error', (err: Error) => {
      this.failure ??= new FiredeckError('disconnected', `${this.peer}: ${err.message}`);
      this.wake?.();
    });
  }

  async read(count: number, deadline = Infinity): Promise<Buffer> {
    while (this.buffered < count) {
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new FiredeckError('timeout', `${this.peer} did not send ${count} bytes in time`);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(done, left) : null;
        this.wake = done;
        function done(): void {
          if (timer) clearTimeout(timer);
          resolve();
        }
      });
      this.wake = null;
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, count);
    const rest = all.subarray(count);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  async readString(max: number, deadline?: number): Promise<string> {
    const length = (await this.read(4, deadline)).readUInt32BE(0);
    if (length > max) throw new FiredeckError('unavailable', `${this.peer} sent a ${length}-byte string`);
    return (await this.read(length, deadline)).toString('utf8');
  }
}

/** Connects, authenticates (None or VncAuth), sends ClientInit, SetPixelFormat (32 bpp) and SetEncodings (raw). */
export async function connectRfb(stream: RfbStream, options: RfbConnectOptions = {}): Promise<RfbClient> {
  const input: Readable = 'input' in stream ? stream.input : stream;
  const output: Writable = 'output' in stream ? stream.output : stream;
  const peer = options.peer ?? 'the VNC server';
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const reader = new ByteReader(input, peer);
  const end = (): void => {
    if ('input' in stream) {
      stream.output.end();
      stream.input.destroy();
    } else {
      stream.destroy();
    }
  };
  try {
    const banner = (await reader.read(12, deadline)).toString('latin1');
    const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(banner);
    if (!m || Number(m[1]) !== 3 || Number(m[2]) < 8) {
      throw new FiredeckError('unavailable', `${peer} is not an RFB 3.8 server (it sent ${JSON.stringify(banner)})`);
    }
    output.write('RFB 003.008\n');
    const count = (await reader.read(1, deadline))[0]!;
    if (count === 0) {
      throw new FiredeckError(
        'unavailable',
        `${peer} refused the connection: ${await reader.readString(MAX_REASON, deadline)}`,
      );
    }
    const types = [...(await reader.read(count, deadline))];
    let chosen: number;
    if (options.password !== undefined && types.includes(SECURITY_VNC_AUTH)) chosen = SECURITY_VNC_AUTH;
    else if (types.includes(SECURITY_NONE)) chosen = SECURITY_NONE;
    else if (types.includes(SECURITY_VNC_AUTH)) {
      throw new FiredeckError('auth_failed', `${peer} asks for a VNC password and none was given`, {
        hint: 'Pass the password (for Xvnc the one from its password file), or connect through `firedeckd vnc`.',
      });
    } else {
      throw new FiredeckError('unavailable', `${peer} offers no security type this client has (${types.join(', ')})`);
    }
    output.write(Buffer.from([chosen]));
    if (chosen === SECURITY_VNC_AUTH) {
      const challenge = await reader.read(16, deadline);
      output.write(vncAuthResponse(options.password!, challenge));
    }
    const result = (await reader.read(4, deadline)).readUInt32BE(0);
    if (result !== 0) {
      const reason = await reader.readString(MAX_REASON, deadline).catch(() => '');
      throw new FiredeckError(
        'auth_failed',
        `${peer} refused the ${chosen === SECURITY_VNC_AUTH ? 'VNC password' : 'connection'}${reason ? `: ${reason}` : ''}`,
        {
          hint:
            chosen === SECURITY_VNC_AUTH ? 'Check the password; VncAuth uses only its first 8 characters.' : undefined,
        },
      );
    }
    output.write(Buffer.from([1])); // ClientInit: shared, so that a viewer already connected stays
    const init = await reader.read(24, deadline);
    const width = init.readUInt16BE(0);
    const height = init.readUInt16BE(2);
    const nameLength = init.readUInt32BE(20);
    if (nameLength > MAX_NAME) throw new FiredeckError('unavailable', `${peer} sent a ${nameLength}-byte desktop name`);
    const name = (await reader.read(nameLength, deadline)).toString('utf8');
    return new Session(reader, output, end, peer, width, height, name);
  } catch (err) {
    end();
    throw err;
  }
}

interface PendingUpdate {
  resolve: () => void;
  reject: (err: Error) => void;
}

class Session implements RfbClient {
  /** BGRX as the server sends it with our pixel format (32 bpp, little endian, red shift 16). */
  private readonly frame: Buffer;
  private readonly waiting: PendingUpdate[] = [];
  private failure: Error | null = null;
  private closed = false;
  /** Bytes of framebuffer updates read so far (headers and pixels). */
  private updateBytes = 0;

  constructor(
    private readonly reader: ByteReader,
    private readonly output: Writable,
    private readonly end: () => void,
    private readonly peer: string,
    readonly width: number,
    readonly height: number,
    readonly name: string,
  ) {
    this.frame = Buffer.alloc(width * height * 4);
    const pixelFormat = Buffer.alloc(20);
    pixelFormat[0] = 0; // SetPixelFormat
    pixelFormat[4] = 32; // bits per pixel
    pixelFormat[5] = 24; // depth
    pixelFormat[6] = 0; // little endian
    pixelFormat[7] = 1; // true colour
    pixelFormat.writeUInt16BE(255, 8);
    pixelFormat.writeUInt16BE(255, 10);
    pixelFormat.writeUInt16BE(255, 12);
    pixelFormat[14] = 16; // red shift
    pixelFormat[15] = 8; // green shift
    pixelFormat[16] = 0; // blue shift
    const encodings = Buffer.alloc(8);
    encodings[0] = 2; // SetEncodings
    encodings.writeUInt16BE(1, 2);
    encodings.writeInt32BE(0, 4); // raw
    this.output.write(Buffer.concat([pixelFormat, encodings]));
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const type = (await this.reader.read(1))[0]!;
        switch (type) {
          case 0:
            await this.readUpdate();
            this.waiting.shift()?.resolve();
            break;
          case 1: {
            // SetColourMapEntries: not used with true colour, but must be skipped whole.
            const head = await this.reader.read(5);
            await this.reader.read(head.readUInt16BE(3) * 6);
            break;
          }
          case 2: // Bell
            break;
          case 3: {
            await this.reader.read(3);
            const length = (await this.reader.read(4)).readUInt32BE(0);
            await this.reader.read(length);
            break;
          }
          default:
            throw new FiredeckError('unavailable', `${this.peer} sent unknown message type ${type}`);
        }
      }
    } catch (err) {
      this.failure =
        this.closed && err instanceof FiredeckError && err.kind === 'disconnected'
          ? new FiredeckError('disconnected', 'the RFB client is closed')
          : (err as Error);
      for (const w of this.waiting.splice(0)) w.reject(this.failure);
    }
  }

  private async readUpdate(): Promise<void> {
    const head = await this.reader.read(3);
    const rects = head.readUInt16BE(1);
    this.updateBytes += 4 + rects * 12;
    for (let i = 0; i < rects; i++) {
      const r = await this.reader.read(12);
      const x = r.readUInt16BE(0);
      const y = r.readUInt16BE(2);
      const w = r.readUInt16BE(4);
      const h = r.readUInt16BE(6);
      const encoding = r.readInt32BE(8);
      if (encoding !== 0) {
        throw new FiredeckError('unavailable', `${this.peer} sent encoding ${encoding}, though only raw was asked for`);
      }
      if (x + w > this.width || y + h > this.height) {
        throw new FiredeckError('unavailable', `${this.peer} sent a rectangle outside the framebuffer`);
      }
      const pixels = await this.reader.read(w * h * 4);
      this.updateBytes += pixels.length;
      for (let row = 0; row < h; row++) {
        pixels.copy(this.frame, ((y + row) * this.width + x) * 4, row * w * 4, (row + 1) * w * 4);
      }
    }
  }

  private write(data: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new FiredeckError('disconnected', 'the RFB client is closed'));
    return new Promise((resolve, reject) => {
      this.output.write(data, (err) => (err ? reject(new FiredeckError('disconnected', err.message)) : resolve()));
    });
  }

  private keyEvent(keysym: number, down: boolean): Buffer {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    return b;
  }

  private press(keysym: number, shift: boolean): Buffer[] {
    const events = [this.keyEvent(keysym, true), this.keyEvent(keysym, false)];
    return shift ? [this.keyEvent(SHIFT_L, true), ...events, this.keyEvent(SHIFT_L, false)] : events;
  }

  async typeText(text: string): Promise<void> {
    const events: Buffer[] = [];
    for (const ch of text) {
      const code = ch.codePointAt(0)!;
      if (ch === '\n') events.push(...this.press(RFB_KEYSYMS.Return, false));
      else if (ch === '\t') events.push(...this.press(RFB_KEYSYMS.Tab, false));
      // Latin-1 keysyms equal their code points; printable ASCII is 0x20..0x7e.
      else if (code >= 0x20 && code <= 0x7e) events.push(...this.press(code, SHIFTED.has(ch)));
      else {
        throw new FiredeckError(
          'invalid_params',
          `typeText types printable ASCII only, not U+${code.toString(16).padStart(4, '0')}`,
          {
            hint: 'Use key() for Tab, Return, BackSpace and Escape.',
          },
        );
      }
    }
    await this.write(Buffer.concat(events));
  }

  async key(name: RfbKeyName): Promise<void> {
    const keysym = RFB_KEYSYMS[name] as number | undefined;
    if (keysym === undefined) {
      throw new FiredeckError('invalid_params', `unknown key ${String(name)}`, {
        hint: `Known keys: ${Object.keys(RFB_KEYSYMS).join(', ')}.`,
      });
    }
    await this.write(Buffer.concat(this.press(keysym, false)));
  }

  async pointer(x: number, y: number, buttons = 0): Promise<void> {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= this.width || y >= this.height) {
      throw new FiredeckError(
        'invalid_params',
        `pointer position ${x},${y} is outside the ${this.width}x${this.height} desktop`,
      );
    }
    const b = Buffer.alloc(6);
    b[0] = 5;
    b[1] = buttons & 0xff;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    await this.write(b);
  }

  async screenshot(file: string, timeoutMs = 30_000): Promise<{ width: number; height: number }> {
    await this.fullUpdate(timeoutMs);
    fs.writeFileSync(file, encodePng(this.width, this.height, this.frame));
    return { width: this.width, height: this.height };
  }

  async fullUpdate(timeoutMs = 30_000): Promise<number> {
    const request = Buffer.alloc(10);
    request[0] = 3; // FramebufferUpdateRequest
    request[1] = 0; // not incremental: the whole area, whether it changed or not
    request.writeUInt16BE(this.width, 6);
    request.writeUInt16BE(this.height, 8);
    let timer: NodeJS.Timeout | undefined;
    const updated = new Promise<void>((resolve, reject) => {
      const entry: PendingUpdate = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiting.push(entry);
      timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new FiredeckError('timeout', `${this.peer} sent no framebuffer update within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const before = this.updateBytes;
    await this.write(request);
    await updated;
    return this.updateBytes - before;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.end();
  }
}

/** An 8-bit RGB PNG of a BGRX framebuffer: one IHDR, one zlib IDAT of filter-0 rows, IEND. */
export function encodePng(width: number, height: number, bgrx: Buffer): Buffer {
  const stride = width * 3 + 1;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0;
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 4;
      const d = y * stride + 1 + x * 3;
      raw[d] = bgrx[s + 2]!;
      raw[d + 1] = bgrx[s + 1]!;
      raw[d + 2] = bgrx[s]!;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** Reads a PNG written by encodePng (or any 8-bit RGB/RGBA, non-interlaced PNG): size and RGB pixels. */
export function decodePng(png: Buffer): { width: number; height: number; rgb: Buffer } {
  if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    throw new FiredeckError('invalid_params', 'not a PNG (bad signature)');
  }
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 3;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    const crc = png.readUInt32BE(offset + 8 + length);
    if (zlib.crc32(png.subarray(offset + 4, offset + 8 + length)) !== crc) {
      throw new FiredeckError('integrity', `PNG chunk ${type} fails its CRC`);
    }
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || (data[9] !== 2 && data[9] !== 6) || data[12] !== 0) {
        throw new FiredeckError('invalid_params', 'only 8-bit RGB/RGBA non-interlaced PNGs are read here');
      }
      channels = data[9] === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const rgb = Buffer.alloc(width * height * 3);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let add = 0;
      if (filter === 1) add = a;
      else if (filter === 2) add = b;
      else if (filter === 3) add = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        add = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = (line[i]! + add) & 0xff;
    }
    for (let x = 0; x < width; x++) line.copy(rgb, (y * width + x) * 3, x * channels, x * channels + 3);
    prev = line;
  }
  return { width, height, rgb };
}
