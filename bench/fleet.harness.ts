// Runs in Chromium, bundled by bench/fleet.bench.ts: the real FleetView and stores, fed synthetic VMs.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import '../src/renderer/src/styles.css';
import type { Vm } from '../src/shared/protocol/vm';
import type { AppClient } from '../src/renderer/src/api/appClient';
import type { ChannelHub } from '../src/renderer/src/api/channelHub';
import { FleetView } from '../src/renderer/src/features/fleet/FleetView';
import { ConsoleBuffer } from '../src/renderer/src/features/vm/consoleBuffer';
import { ActionsContext, type Actions } from '../src/renderer/src/state/actionsContext';
import { useFleetStore, type FleetOp } from '../src/renderer/src/state/fleetStore';
import { useHostsStore } from '../src/renderer/src/state/hostsStore';
import { useUiStore } from '../src/renderer/src/state/uiStore';

export interface FrameStats {
  frames: number;
  p50: number;
  p95: number;
  max: number;
  updatesApplied: number;
}

const STATES = ['running', 'booting', 'stopping', 'stopped'] as const;

function vm(i: number, tick: number): Vm {
  const at = new Date(Date.now() - i * 1000).toISOString();
  return {
    id: `vm-${i.toString(16).padStart(8, '0')}`,
    name: `vm-${i}`,
    kind: i % 3 === 0 ? 'browser' : 'cli',
    owner: `user${i % 40}@example.org`,
    image: 'cli@1',
    driver: 'qemu',
    vcpus: 1 + (i % 2),
    memoryMib: 256 + (tick % 4) * 64,
    diskMib: 4096,
    address: `10.213.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    tap: null,
    mac: null,
    pid: 1000 + i,
    state: STATES[(i + tick) % STATES.length]!,
    ready: ['vm'],
    createdAt: at,
    updatedAt: new Date().toISOString(),
    startedAt: at,
    expiresAt: null,
    lastError: null,
  } as Vm;
}

function mount(): void {
  useHostsStore.getState().setHosts([
    {
      id: 'local',
      name: 'local',
      kind: 'local',
      address: 'x',
      port: 0,
      user: 'root',
      auth: null,
      hostKeyFingerprint: null,
    },
  ]);
  useUiStore.getState().show({ name: 'fleet' });
  const actions = {
    client: {} as AppClient,
    hosts: {} as Actions['hosts'],
    fleet: {
      refresh: async () => undefined,
      refreshConnected: async () => undefined,
      run: async () => undefined,
      // The bench never opens the create form.
      openCreateForm: () => undefined,
      closeCreateForm: () => undefined,
      pickCreateHost: async () => undefined,
      loadCreateChoices: async () => undefined,
      pickCreateKind: () => undefined,
      submitCreate: async () => null,
    },
    auth: {} as Actions['auth'],
    audit: {} as Actions['audit'],
    images: {} as Actions['images'],
    channels: {} as ChannelHub,
  } satisfies Actions;
  const root = document.getElementById('root')!;
  root.style.height = '100vh';
  root.style.display = 'flex';
  createRoot(root).render(
    createElement(
      ActionsContext.Provider,
      { value: actions },
      createElement('div', { className: 'app-main', style: { flex: 1 } }, createElement(FleetView)),
    ),
  );
}

/**
 * Loads `count` VMs, then for `ms` changes `perTick` of them every 1000/`hz` ms and, `statsHz` times a second,
 * appends a CPU/memory sample for every VM (a `vm.stats` event of the whole host), measuring frame intervals.
 */
async function fleetRun(count: number, hz: number, perTick: number, ms: number, statsHz = 0): Promise<FrameStats> {
  useFleetStore.getState().replaceHost(
    'local',
    Array.from({ length: count }, (_, i) => vm(i, 0)),
  );
  // Let the full list render before measuring.
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const deltas: number[] = [];
  let last = performance.now();
  let running = true;
  const loop = (t: number): void => {
    deltas.push(t - last);
    last = t;
    if (running) requestAnimationFrame(loop);
  };
  requestAnimationFrame((t) => {
    last = t;
    requestAnimationFrame(loop);
  });
  let tick = 0;
  let applied = 0;
  const timer =
    hz > 0
      ? setInterval(() => {
          tick++;
          const ops: FleetOp[] = [];
          for (let k = 0; k < perTick; k++)
            ops.push({ op: 'upsert', hostId: 'local', vm: vm((tick * perTick + k) % count, tick) });
          useFleetStore.getState().applyBatch(ops);
          applied += ops.length;
        }, 1000 / hz)
      : null;
  const statsTimer =
    statsHz > 0
      ? setInterval(() => {
          tick++;
          const at = new Date().toISOString();
          const samples = Array.from({ length: count }, (_, i) => ({
            vmId: `vm-${i.toString(16).padStart(8, '0')}`,
            at,
            vcpus: 2,
            vcpuPercent: ((i * 7 + tick * 13) % 100) * 0.99 + 0.5,
            hostCpuPercent: (((i * 7 + tick * 13) % 100) * 0.99 + 0.5) * 2,
            guestMemoryBytes: 256 * 1024 * 1024,
            hypervisorRssBytes: (200 + ((i + tick) % 50)) * 1024 * 1024,
          }));
          useFleetStore.getState().applyStats([{ hostId: 'local', samples }]);
          applied += samples.length;
        }, 1000 / statsHz)
      : null;
  await new Promise((r) => setTimeout(r, ms));
  running = false;
  if (timer) clearInterval(timer);
  if (statsTimer) clearInterval(statsTimer);
  const sorted = [...deltas].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return { frames: deltas.length, p50: q(0.5), p95: q(0.95), max: sorted.at(-1) ?? 0, updatesApplied: applied };
}

function consoleText(bytes: number): Uint8Array {
  const line = (i: number): string =>
    `[ ${(i / 1000).toFixed(6)}] systemd[1]: Started unit-${i}.service - Firedeck test unit ${i}.\r\n`;
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += line(i);
  return new TextEncoder().encode(s.slice(0, bytes));
}

/** MB/s of console output written into xterm.js in 32 KiB chunks, each acknowledged by xterm's write callback. */
async function xtermThroughput(totalBytes: number): Promise<number> {
  const host = document.createElement('div');
  host.style.cssText = 'width:1000px;height:600px;position:fixed;left:0;top:0;z-index:99';
  document.body.appendChild(host);
  const term = new Terminal({ scrollback: 10_000 });
  term.open(host);
  const data = consoleText(totalBytes);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    let offset = 0;
    const pump = (): void => {
      // The app's flow control in miniature: at most 5 chunks not yet parsed.
      while (inFlight < 5 && offset < data.length) {
        const chunk = data.subarray(offset, offset + 32 * 1024);
        offset += chunk.length;
        inFlight++;
        term.write(chunk, () => {
          inFlight--;
          if (offset >= data.length && inFlight === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const secs = (performance.now() - t0) / 1000;
  term.dispose();
  host.remove();
  return totalBytes / 1e6 / secs;
}

/** Baseline for the console: the same bytes through the log view's line buffer. */
function bufferThroughput(totalBytes: number): number {
  const data = consoleText(totalBytes);
  const b = new ConsoleBuffer();
  const t0 = performance.now();
  for (let o = 0; o < data.length; o += 32 * 1024) b.push(data.subarray(o, o + 32 * 1024));
  return totalBytes / 1e6 / ((performance.now() - t0) / 1000);
}

mount();
(window as unknown as { bench: unknown }).bench = { fleetRun, xtermThroughput, bufferThroughput };
