#!/usr/bin/env node
// Draws the Firedeck icon (a flame above a deck of three microVM slabs, on a dark rounded square) and writes the
// files electron-builder packages: icon.png (1024 px), icon.icns (macOS, PNG-based entries 16–1024 px) and
// icons/<N>x<N>.png (Linux, 16–512 px). The output is deterministic: build/icons.test.ts checks that the committed
// files are what this script makes. Usage: node build/scripts/icons.mjs [outDir] (default build/resources).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(process.argv[2] ?? path.join(here, '..', 'resources'));

const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
const mix = (a, b, t) => a.map((x, i) => x + (b[i] - x) * t);
const clamp = (x, lo = 0, hi = 1) => Math.min(hi, Math.max(lo, x));

function roundedBox(x, y, cx, cy, hw, hh, r) {
  const qx = Math.abs(x - cx) - hw + r;
  const qy = Math.abs(y - cy) - hh + r;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}

/** A teardrop: circle of radius r1 at the base, r2 at the tip h above it (Inigo Quilez's uneven capsule). */
function flame(x, y, cx, cy, r1, r2, h) {
  const px = Math.abs(x - cx);
  const py = cy - y;
  const b = (r1 - r2) / h;
  const a = Math.sqrt(1 - b * b);
  const k = -b * px + a * py;
  if (k < 0) return Math.hypot(px, py) - r1;
  if (k > a * h) return Math.hypot(px, py - h) - r2;
  return a * px + b * py - r1;
}

const BG_TOP = hex('#1e293b');
const BG_BOTTOM = hex('#0b1220');
const SLABS = [
  { cy: 0.755, hw: 0.28, color: hex('#0284c7') },
  { cy: 0.635, hw: 0.23, color: hex('#0ea5e9') },
  { cy: 0.515, hw: 0.18, color: hex('#38bdf8') },
];
const FLAME_BASE = hex('#f97316');
const FLAME_TIP = hex('#facc15');
const FLAME_CORE = hex('#fef3c7');

/** The colour (straight RGBA) at normalised (x, y), with anti-aliasing from the signed distances. */
function shade(x, y, px) {
  const layers = [];
  const cover = (d) => clamp(0.5 - d / px);
  layers.push([mix(BG_TOP, BG_BOTTOM, y), cover(roundedBox(x, y, 0.5, 0.5, 0.41, 0.41, 0.09))]);
  for (const s of SLABS) layers.push([s.color, cover(roundedBox(x, y, 0.5, s.cy, s.hw, 0.045, 0.03))]);
  layers.push([mix(FLAME_TIP, FLAME_BASE, clamp((y - 0.14) / 0.28)), cover(flame(x, y, 0.5, 0.345, 0.09, 0.012, 0.2))]);
  layers.push([FLAME_CORE, cover(flame(x, y, 0.5, 0.37, 0.04, 0.006, 0.1))]);
  let rgb = [0, 0, 0];
  let alpha = 0;
  for (const [color, a] of layers) {
    if (a === 0) continue;
    const out = a + alpha * (1 - a);
    rgb = rgb.map((c, i) => (color[i] * a + c * alpha * (1 - a)) / out);
    alpha = out;
  }
  return [...rgb, alpha];
}

function render(size) {
  const data = Buffer.alloc(size * (size * 4 + 1));
  for (let j = 0; j < size; j++) {
    const row = j * (size * 4 + 1);
    data[row] = 0; // PNG filter type: none
    for (let i = 0; i < size; i++) {
      const rgba = shade((i + 0.5) / size, (j + 0.5) / size, 1 / size);
      for (let c = 0; c < 4; c++) data[row + 1 + i * 4 + c] = Math.round(clamp(rgba[c]) * 255);
    }
  }
  return png(size, data);
}

function png(size, raw) {
  const chunk = (type, body) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from(type, 'ascii'), body])));
    return Buffer.concat([len, Buffer.from(type, 'ascii'), body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** ICNS with PNG payloads: the OSType of each size (and of its @2x twin) as macOS reads them. */
const ICNS_TYPES = [
  ['icp4', 16],
  ['icp5', 32],
  ['ic11', 32],
  ['icp6', 64],
  ['ic12', 64],
  ['ic07', 128],
  ['ic08', 256],
  ['ic13', 256],
  ['ic09', 512],
  ['ic14', 512],
  ['ic10', 1024],
];

function icns(pngs) {
  const entries = ICNS_TYPES.map(([type, size]) => {
    const head = Buffer.alloc(8);
    head.write(type, 0, 'ascii');
    head.writeUInt32BE(8 + pngs.get(size).length, 4);
    return Buffer.concat([head, pngs.get(size)]);
  });
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'ascii');
  head.writeUInt32BE(8 + entries.reduce((n, e) => n + e.length, 0), 4);
  return Buffer.concat([head, ...entries]);
}

const pngs = new Map([16, 32, 48, 64, 128, 256, 512, 1024].map((s) => [s, render(s)]));
fs.mkdirSync(path.join(outDir, 'icons'), { recursive: true });
fs.writeFileSync(path.join(outDir, 'icon.png'), pngs.get(1024));
fs.writeFileSync(path.join(outDir, 'icon.icns'), icns(pngs));
for (const size of [16, 32, 48, 64, 128, 256, 512]) {
  fs.writeFileSync(path.join(outDir, 'icons', `${size}x${size}.png`), pngs.get(size));
}
