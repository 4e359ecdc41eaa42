import { describe, expect, it } from 'vitest';
import {
  checkRecord,
  checkResults,
  formatCompare,
  formatTable,
  parseRecords,
  targetMet,
  type BenchRecordInput,
  type BenchResults,
} from './scripts/bench-report.mjs';

const rpc: BenchRecordInput = {
  name: 'RPC round trip p50',
  value: 1.5,
  unit: 'ms',
  baselineName: 'ssh host true p50',
  baselineValue: 150,
  better: 'lower',
  target: { on: 'value', op: '<=', limit: 2 },
};
const vnc: BenchRecordInput = {
  name: 'VNC bytes through firedeckd vnc',
  value: 80,
  unit: 'MB/s',
  baselineName: 'direct TCP',
  baselineValue: 100,
  better: 'higher',
  target: { on: 'ratio', op: '>=', limit: 0.9 },
};

describe('the bench report', () => {
  it('computes each ratio as value / baseline and says whether the target is met', () => {
    const r = checkRecord(rpc);
    expect(r.ratio).toBeCloseTo(0.01);
    expect(targetMet(r)).toBe(true);
    const v = checkRecord(vnc);
    expect(v.ratio).toBeCloseTo(0.8);
    expect(targetMet(v)).toBe(false);
    expect(targetMet(checkRecord({ ...rpc, target: undefined }))).toBeNull();
  });

  it('refuses a figure that was not measured: no sample, zero, NaN, infinity', () => {
    for (const bad of [undefined, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, '3']) {
      expect(() => checkRecord({ ...rpc, value: bad })).toThrow(/value .* not a measurement/);
      expect(() => checkRecord({ ...rpc, baselineValue: bad })).toThrow(/baselineValue .* not a measurement/);
    }
    expect(() => checkRecord({ ...rpc, name: '' })).toThrow(/name must be/);
    expect(() => checkRecord({ ...rpc, better: 'faster' })).toThrow(/better/);
    expect(() => checkRecord({ ...rpc, target: { on: 'value', op: '<', limit: 2 } })).toThrow(/target/);
  });

  it('merges the records of one run and refuses two rows of one name', () => {
    const lines = [rpc, vnc].map((r) => JSON.stringify(r)).join('\n');
    expect(parseRecords(`${lines}\n\n`).map((r) => r.name)).toEqual([rpc.name, vnc.name]);
    expect(() => parseRecords(`${lines}\n${JSON.stringify(rpc)}\n`)).toThrow(/two bench records are named/);
  });

  it('prints one table: value, baseline, ratio and target of every figure', () => {
    const table = formatTable([checkRecord(rpc), checkRecord({ ...vnc, note: '15 updates' })]);
    const [head, first, second] = table.split('\n');
    expect(head).toMatch(/^benchmark\s+value\s+baseline\s+baseline is\s+ratio\s+better\s+target$/);
    expect(first).toMatch(
      /^RPC round trip p50\s+1\.50 ms\s+150 ms\s+ssh host true p50\s+0\.010×\s+lower\s+≤ 2\.00 ms: met$/,
    );
    expect(second).toMatch(/0\.80×\s+higher\s+≥ 0\.90× baseline: MISSED$/);
    expect(table).toMatch(/notes:\n {2}VNC bytes through firedeckd vnc: 15 updates$/);
  });

  it('compares two results files ratio by ratio, saying which way each moved', () => {
    const run = (commit: string, records: BenchRecordInput[]): BenchResults =>
      checkResults(
        {
          version: 1,
          commit,
          at: '2026-12-04T00:00:00.000Z',
          host: { cpus: 2, kernel: 'k', node: 'v20' },
          failed: [],
          records,
        },
        `${commit}.json`,
      );
    const a = run('aaaaaaa', [rpc, vnc]);
    const b = run('bbbbbbb-dirty', [
      { ...rpc, value: 3 },
      { ...vnc, value: 99 },
      { ...rpc, name: 'new figure' },
    ]);
    const lines = formatCompare(a, b).split('\n');
    expect(lines[0]).toMatch(/^benchmark\s+ratio aaaaaaa\s+ratio bbbbbbb-dirty\s+change$/);
    expect(lines[1]).toMatch(/^RPC round trip p50\s+0\.010×\s+0\.020×\s+2\.00×\s+worse$/);
    expect(lines[2]).toMatch(/^VNC bytes through firedeckd vnc\s+0\.80×\s+0\.99×\s+1\.24×\s+better$/);
    expect(lines[3]).toMatch(/^new figure\s+—\s+0\.010×$/);
    expect(() => checkResults({ version: 2, records: [] }, 'old.json')).toThrow(
      /old\.json is not a bench results file/,
    );
  });
});
