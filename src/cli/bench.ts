// `lowbit bench kernels`: lowbit's kernels and the peers (onnxruntime-node, onnxruntime-web, tfjs-wasm)
// timed in the same process on the same shapes, as rows {name, impl, threads, ms, gops}, with the ratios
// the engine's targets are stated in.

import Table from 'cli-table3';
import { benchLowbitKernels } from '../../bench/kernels.js';
import { KERNEL_CASES, measurePeers, type BenchRow } from '../../bench/peers.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { UsageError } from '../errors.js';

export interface BenchOptions {
  json?: string;
  runs: number;
  warmup: number;
  threads: number[];
  peers: boolean;
  /** Repeat lowbit-then-peers this many times and report the median of the rounds' medians. */
  rounds: number;
}

/** One row per (name, impl, threads): the median over rounds, so that a noisy phase does not decide. */
function medianOfRounds(rows: BenchRow[]): BenchRow[] {
  const groups = new Map<string, BenchRow[]>();
  for (const r of rows) {
    const key = `${r.name}|${r.impl}|${r.threads}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const finite = g.filter((r) => Number.isFinite(r.ms)).sort((a, b) => a.ms - b.ms);
    if (!finite.length) return g[0];
    const mid = finite[Math.floor((finite.length - 1) / 2)];
    return { ...mid, note: [mid.note, g.length > 1 ? `median of ${finite.length} rounds: ${finite.map((r) => r.ms.toFixed(2)).join('/')} ms` : ''].filter(Boolean).join('; ') };
  });
}

function find(rows: BenchRow[], name: string, impl: string, threads: number): BenchRow | undefined {
  return rows.find((r) => r.name === name && r.impl === impl && r.threads === threads && Number.isFinite(r.ms));
}

/** The targets as measured ratios (NaN where a row is missing). */
export function targetRatios(rows: BenchRow[]): { target: string; ratio: number; goal: number }[] {
  const ratio = (a?: BenchRow, b?: BenchRow) => (a && b ? b.ms / a.ms : NaN);
  const l1 = (n: string) => find(rows, n, 'lowbit', 1);
  return [
    { target: 'gemm-f32-512 lowbit 1T vs onnxruntime-web 1T (speedup)', ratio: ratio(l1('gemm-f32-512'), find(rows, 'gemm-f32-512', 'onnxruntime-web', 1)), goal: 1.3 },
    { target: 'gemm-f32-512 lowbit 2T vs lowbit 1T (speedup)', ratio: ratio(find(rows, 'gemm-f32-512', 'lowbit', 2), l1('gemm-f32-512')), goal: 1.8 },
    { target: 'conv3x3-64-56 lowbit 1T vs onnxruntime-web 1T (speedup)', ratio: ratio(l1('conv3x3-64-56'), find(rows, 'conv3x3-64-56', 'onnxruntime-web', 1)), goal: 1.3 },
    { target: 'conv3x3-64-56 lowbit 1T vs tfjs-wasm 1T (speedup)', ratio: ratio(l1('conv3x3-64-56'), find(rows, 'conv3x3-64-56', 'tfjs-wasm', 1)), goal: 1.0 },
    // backward time / forward time must stay <= 2.5: expressed as forward/backward*2.5 >= 1
    { target: 'conv3x3-64-56 backward within 2.5x forward (2.5*fwd/bwd)', ratio: ratio(l1('conv3x3-64-56-backward'), l1('conv3x3-64-56')) * 2.5, goal: 1.0 },
  ];
}

export async function runBenchKernels(opts: BenchOptions, log: (s: string) => void): Promise<BenchRow[]> {
  if (!opts.threads.length || opts.threads.some((t) => !Number.isInteger(t) || t < 1 || t > 16)) {
    throw new UsageError(`--threads must be a comma-separated list of integers from 1 to 16, got ${opts.threads.join(',')}`);
  }
  log(`lowbit kernels: ${KERNEL_CASES.map((c) => c.name).join(', ')}; threads ${opts.threads.join(',')}; ${opts.warmup} warm-up + ${opts.runs} timed runs each (medians)`);
  const all: BenchRow[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    log(`round ${round}/${opts.rounds}: lowbit`);
    all.push(...(await benchLowbitKernels({ warmup: opts.warmup, runs: opts.runs, threads: opts.threads })));
    if (opts.peers) {
      log(`round ${round}/${opts.rounds}: peers onnxruntime-node, onnxruntime-web, tfjs-wasm (same process, same shapes)`);
      all.push(...(await measurePeers(KERNEL_CASES, { warmup: opts.warmup, runs: opts.runs, threads: opts.threads })));
    }
  }
  const rows = medianOfRounds(all);
  const order = KERNEL_CASES.map((c) => c.name);
  rows.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name) || a.impl.localeCompare(b.impl) || a.threads - b.threads);

  const table = new Table({ head: ['name', 'impl', 'threads', 'ms (median)', 'GOP/s', 'note'] });
  for (const r of rows) {
    table.push([r.name, r.impl, r.threads, Number.isFinite(r.ms) ? r.ms.toFixed(3) : '-', Number.isFinite(r.gops) ? r.gops.toFixed(1) : '-', r.note ?? '']);
  }
  log(table.toString());
  if (opts.peers) {
    const t = new Table({ head: ['target', 'measured', 'goal', ''] });
    for (const r of targetRatios(rows)) {
      t.push([r.target, Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '-', `>= ${r.goal}`, Number.isFinite(r.ratio) ? (r.ratio >= r.goal ? 'met' : 'missed') : 'n/a']);
    }
    log(t.toString());
  }
  if (opts.json) writeFileAtomic(opts.json, JSON.stringify({ rows, targets: opts.peers ? targetRatios(rows) : [] }, null, 2) + '\n');
  return rows;
}
