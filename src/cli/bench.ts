// `lowbit bench kernels`: lowbit's kernels and the peers (onnxruntime-node, onnxruntime-web, tfjs-wasm)
// timed in the same process on the same shapes, as rows {name, impl, threads, ms, gops}, with the ratios
// the engine's targets are stated in.

import { textTable } from './table.js';
import { benchLowbitKernels } from '../../bench/kernels.js';
import { KERNEL_CASES, measurePeers, type BenchRow } from '../../bench/peers.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { benchLowbitRuntime, measureRuntimeMemory, type MemoryRow, type RuntimeRow } from '../../bench/runtime.js';
import { measureRuntimePeers } from '../../bench/runtime-peers.js';
import { benchLowbitTrain, profileLowbitTrain, TRAIN_MODELS, type KernelProfileRow, type StepPlan, type TrainModel, type TrainRow } from '../../bench/train.js';
import { benchPytorchTrain, benchTfjsCpuTrain, pytorchUnavailable, TFJS_RESNET20_BATCH } from '../../bench/train-peers.js';
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

/** One row per (name, impl, dtype, threads): the median over rounds, so that a noisy phase does not decide. */
function medianOfRounds<R extends { name: string; impl: string; threads: number; ms: number; note?: string; dtype?: string }>(rows: R[]): R[] {
  const groups = new Map<string, R[]>();
  for (const r of rows) {
    const key = `${r.name}|${r.impl}|${r.dtype ?? ''}|${r.threads}`;
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

/** The issue's targets as measured ratios (NaN where a row is missing). */
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

  const table = textTable(['name', 'impl', 'threads', 'ms (median)', 'GOP/s', 'note']);
  for (const r of rows) {
    table.push([r.name, r.impl, r.threads, Number.isFinite(r.ms) ? r.ms.toFixed(3) : '-', Number.isFinite(r.gops) ? r.gops.toFixed(1) : '-', r.note ?? '']);
  }
  log(table.toString());
  if (opts.peers) {
    const t = textTable(['target', 'measured', 'goal', '']);
    for (const r of targetRatios(rows)) {
      t.push([r.target, Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '-', `>= ${r.goal}`, Number.isFinite(r.ratio) ? (r.ratio >= r.goal ? 'met' : 'missed') : 'n/a']);
    }
    log(t.toString());
  }
  if (opts.json) writeFileAtomic(opts.json, JSON.stringify({ rows, targets: opts.peers ? targetRatios(rows) : [] }, null, 2) + '\n');
  return rows;
}

export interface BenchRuntimeOptions {
  json?: string;
  runs: number;
  warmup: number;
  threads: number[];
  only?: string[];
  peers: boolean;
  /** Repeat lowbit-then-peers this many times and report the median of the rounds' medians (default 1). */
  rounds?: number;
}

/** The runtime targets of the issue as measured ratios (speedups; >= goal is met). */
export function runtimeTargetRatios(rows: RuntimeRow[], memory: MemoryRow[] = []): { target: string; ratio: number; goal: number }[] {
  const get = (name: string, impl: string, dtype: string) => rows.find((r) => r.name === name && r.impl === impl && r.dtype === dtype && r.threads === 1 && Number.isFinite(r.ms));
  const ratio = (fast?: RuntimeRow, slow?: RuntimeRow) => (fast && slow ? slow.ms / fast.ms : NaN);
  const L = (n: string, d: string) => get(n, 'lowbit', d);
  return [
    { target: 'conv int8 vs onnxruntime-web int8', ratio: ratio(L('conv3x3-64-56', 'int8'), get('conv3x3-64-56', 'onnxruntime-web', 'int8')), goal: 1.2 },
    { target: 'conv int8 vs lowbit fp32', ratio: ratio(L('conv3x3-64-56', 'int8'), L('conv3x3-64-56', 'fp32')), goal: 2 },
    { target: 'conv binary (bits in/out) vs onnxruntime-node fp32', ratio: ratio(L('conv3x3-64-56', 'binary'), get('conv3x3-64-56', 'onnxruntime-node', 'fp32')), goal: 2.5 },
    { target: 'conv binary vs lowbit fp32', ratio: ratio(L('conv3x3-64-56', 'binary'), L('conv3x3-64-56', 'fp32')), goal: 8 },
    { target: 'ResNet-18 int8 vs onnxruntime-web int8', ratio: ratio(L('resnet18', 'int8'), get('resnet18', 'onnxruntime-web', 'int8')), goal: 1 },
    { target: 'ResNet-18 binary (xnor) vs onnxruntime-node fp32', ratio: ratio(L('resnet18', 'binary'), get('resnet18', 'onnxruntime-node', 'fp32')), goal: 1 },
    { target: 'ResNet-18 memory: fp32 peak / binary peak (WASM + heap)', ratio: memoryRatio(memory, 'fp32', 'binary'), goal: 8 },
  ];
}

function memoryRatio(memory: MemoryRow[], big: string, small: string): number {
  const total = (d: string) => {
    const m = memory.find((r) => r.name === 'resnet18' && r.dtype === d);
    return m ? m.wasmPeakBytes + m.heapBytes : NaN;
  };
  return total(big) / total(small);
}

export async function runBenchRuntime(opts: BenchRuntimeOptions, log: (s: string) => void): Promise<RuntimeRow[]> {
  if (!opts.threads.length || opts.threads.some((t) => !Number.isInteger(t) || t < 1 || t > 16)) {
    throw new UsageError(`--threads must be a comma-separated list of integers from 1 to 16, got ${opts.threads.join(',')}`);
  }
  const rounds = opts.rounds ?? 1;
  log(`lowbit runtime: conv3x3-64-56, lenet5, resnet20, resnet18 x fp32/int8/int4/ternary/binary; threads ${opts.threads.join(',')}; ${opts.warmup} warm-up + ${opts.runs} timed runs (medians)${rounds > 1 ? `, median of ${rounds} rounds` : ''}`);
  const measured: RuntimeRow[] = [];
  for (let round = 1; round <= rounds; round++) {
    if (rounds > 1) log(`round ${round}/${rounds}`);
    measured.push(...(await benchLowbitRuntime({ threads: opts.threads, runs: opts.runs, warmup: opts.warmup, only: opts.only, log })));
    if (opts.peers) {
      log('peers: onnxruntime-node and onnxruntime-web, float Conv and int8 QLinearConv (QDQ) graphs of the same networks');
      measured.push(...(await measureRuntimePeers({ threads: opts.threads, runs: opts.runs, warmup: opts.warmup, only: opts.only })));
    }
  }
  const rows = medianOfRounds(measured);
  const order = ['conv3x3-64-56', 'lenet5', 'resnet20', 'resnet18'];
  rows.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name) || a.dtype.localeCompare(b.dtype) || a.impl.localeCompare(b.impl) || a.threads - b.threads);
  const table = textTable(['name', 'impl', 'dtype', 'threads', 'ms (median)', 'GOP/s', 'note']);
  for (const r of rows) table.push([r.name, r.impl, r.dtype, r.threads, Number.isFinite(r.ms) ? r.ms.toFixed(3) : '-', Number.isFinite(r.gops) ? r.gops.toFixed(1) : '-', (r.note ?? '').slice(0, 90)]);
  log(table.toString());
  const memory: MemoryRow[] = [];
  if (!opts.only?.length || opts.only.includes('resnet18') || opts.only.includes('memory')) {
    log('memory: ResNet-18 written as a packed file, loaded, one inference (peak WASM bytes in use + JS heap kept)');
    for (const d of ['fp32', 'int8', 'binary'] as const) memory.push(measureRuntimeMemory('resnet18', d));
    const mt = textTable(['model', 'dtype', 'file MB', 'peak WASM MB', 'heap MB']);
    for (const m of memory) mt.push([m.name, m.dtype, (m.fileBytes / 1e6).toFixed(2), (m.wasmPeakBytes / 1e6).toFixed(2), (m.heapBytes / 1e6).toFixed(2)]);
    log(mt.toString());
  }
  const targets = opts.peers ? runtimeTargetRatios(rows, memory) : [];
  if (targets.length) {
    const t = textTable(['target (1 thread, same run)', 'measured speedup', 'goal', '']);
    for (const r of targets) t.push([r.target, Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '-', `>= ${r.goal}`, Number.isFinite(r.ratio) ? (r.ratio >= r.goal ? 'met' : 'missed') : 'n/a']);
    log(t.toString());
  }
  if (opts.json) writeFileAtomic(opts.json, JSON.stringify({ rows, memory, targets }, null, 2) + '\n');
  return rows;
}

// `lowbit bench train`: training images/s of LeNet-5 and ResNet-20 in lowbit (the trainer's step) at each
// thread count, and the same models, batches and step in tfjs-cpu and PyTorch (when installed), same run.

export interface BenchTrainOptions {
  json?: string;
  runs: number;
  warmup: number;
  /** lowbit and PyTorch: warm up for at least this many seconds (StepPlan.warmupSeconds). */
  warmupSeconds?: number;
  /** Instead of a fixed number of timed steps: time steps for this many seconds per case (at least one). */
  seconds?: number;
  threads: number[];
  only?: string[];
  peers: boolean;
  /** Also time every kernel of lowbit's step at the largest thread count. */
  profile?: boolean;
  /** tfjs-cpu ResNet-20 at batch 128 too (about an hour per step) instead of TFJS_RESNET20_BATCH. */
  tfjsFullBatch?: boolean;
}

/** The issue's training-throughput targets as measured ratios (lowbit images/s over the peer's). */
export function trainTargetRatios(rows: TrainRow[]): { target: string; ratio: number; goal: number }[] {
  const get = (name: string, impl: string, threads?: number) =>
    rows.find((r) => r.name === name && r.impl === impl && (threads === undefined || r.threads === threads) && Number.isFinite(r.images_per_s));
  const out: { target: string; ratio: number; goal: number }[] = [];
  for (const name of [...new Set(rows.map((r) => r.name))]) {
    for (const l of rows.filter((r) => r.name === name && r.impl === 'lowbit')) {
      const tf = get(name, 'tfjs-cpu'), pt = get(name, 'pytorch', l.threads);
      if (tf) out.push({ target: `${name} lowbit ${l.threads}T vs tfjs-cpu (1T, single-threaded JS${tf.batch !== l.batch ? `, batch ${tf.batch}` : ''})`, ratio: l.images_per_s / tf.images_per_s, goal: 10 });
      if (pt) out.push({ target: `${name} lowbit ${l.threads}T vs pytorch ${pt.threads}T`, ratio: l.images_per_s / pt.images_per_s, goal: 0.5 });
    }
  }
  return out;
}

export async function runBenchTrain(opts: BenchTrainOptions, log: (s: string) => void): Promise<TrainRow[]> {
  if (!opts.threads.length || opts.threads.some((t) => !Number.isInteger(t) || t < 1 || t > 16)) {
    throw new UsageError(`--threads must be a comma-separated list of integers from 1 to 16, got ${opts.threads.join(',')}`);
  }
  const models = Object.keys(TRAIN_MODELS) as TrainModel[];
  const impls = ['lowbit', 'tfjs-cpu', 'pytorch'];
  const unknown = (opts.only ?? []).filter((o) => !models.includes(o.replace(/^train-/, '') as TrainModel) && !impls.includes(o));
  if (unknown.length) throw new UsageError(`--only: unknown ${unknown.join(', ')}; use models (${models.join(', ')}) and/or impls (${impls.join(', ')})`);
  const onlyModels = (opts.only ?? []).map((o) => o.replace(/^train-/, '')).filter((o) => models.includes(o as TrainModel));
  const onlyImpls = (opts.only ?? []).filter((o) => impls.includes(o));
  const wantModel = (m: string) => !onlyModels.length || onlyModels.includes(m);
  const wantImpl = (i: string) => (i === 'lowbit' || opts.peers) && (!onlyImpls.length || onlyImpls.includes(i));
  const plan: StepPlan = opts.seconds !== undefined
    ? { warmup: opts.warmup, runs: 1, seconds: opts.seconds, warmupSeconds: opts.warmupSeconds }
    : { warmup: opts.warmup, runs: opts.runs, warmupSeconds: opts.warmupSeconds };
  const notes: string[] = [];
  const noTorch = wantImpl('pytorch') ? pytorchUnavailable() : null;
  if (noTorch) notes.push(`pytorch skipped: ${noTorch}`);
  log(`lowbit bench train: ${models.filter(wantModel).map((m) => `${TRAIN_MODELS[m].name} (batch ${TRAIN_MODELS[m].batch})`).join(', ')}; ` +
    `threads ${opts.threads.join(',')}; ${plan.warmup} warm-up steps (lowbit, PyTorch: and at least ${plan.warmupSeconds ?? 0} s) + ${plan.seconds !== undefined ? `${plan.seconds} s` : `${plan.runs} timed steps`} per case (median)`);
  for (const n of notes) log(n);

  const rows: TrainRow[] = [];
  const profiles: Record<string, KernelProfileRow[]> = {};
  const add = (row: TrainRow, detail: string) => {
    rows.push(row);
    log(`${row.name} ${row.impl} ${row.threads}T: ${row.images_per_s.toFixed(1)} images/s (${row.ms.toFixed(1)} ms/step, ${row.steps} steps; ${detail})`);
  };
  for (const m of models.filter(wantModel)) {
    if (wantImpl('lowbit')) {
      for (const t of opts.threads) {
        const r = benchLowbitTrain(m, t, plan);
        add(r.row, `mean loss ${r.loss.toFixed(3)}, ${r.changedParameters}/${r.parameters} parameter tensors changed`);
      }
    }
    if (wantImpl('tfjs-cpu')) {
      try {
        const batch = m === 'resnet20' && !opts.tfjsFullBatch ? TFJS_RESNET20_BATCH : TRAIN_MODELS[m].batch;
        const r = await benchTfjsCpuTrain(m, plan, batch);
        add(r.row, `mean loss ${r.loss.toFixed(3)}`);
      } catch (e) {
        notes.push(`tfjs-cpu ${m} failed: ${(e as Error).message}`);
        log(notes[notes.length - 1]);
      }
    }
    if (wantImpl('pytorch') && !noTorch) {
      for (const t of opts.threads) {
        try {
          const r = benchPytorchTrain(m, t, plan);
          add(r.row, `mean loss ${r.loss.toFixed(3)}`);
        } catch (e) {
          notes.push((e as Error).message);
          log(notes[notes.length - 1]);
        }
      }
    }
    if (opts.profile && wantImpl('lowbit')) {
      const t = Math.max(...opts.threads);
      const p = profileLowbitTrain(m, t, { warmup: Math.max(1, plan.warmup), warmupSeconds: plan.warmupSeconds, runs: Math.max(2, Math.min(plan.runs, 5)) });
      profiles[`${TRAIN_MODELS[m].name} ${t}T`] = p.rows;
      const pt = textTable([`${TRAIN_MODELS[m].name} lowbit ${t}T: kernel`, 'calls/step', 'ms/step', 'share']);
      for (const r of p.rows) pt.push([r.kernel, r.calls ? r.calls.toFixed(0) : '', r.msPerStep.toFixed(2), `${(100 * r.share).toFixed(1)}%`]);
      log(`profile (every kernel call timed; ${p.msPerStep.toFixed(1)} ms/step with timing overhead):\n${pt.toString()}`);
    }
  }
  const table = textTable(['name', 'impl', 'threads', 'batch', 'images/s', 'ms/step (median)', 'steps', 'note']);
  for (const r of rows) table.push([r.name, r.impl, r.threads, r.batch, r.images_per_s.toFixed(1), r.ms.toFixed(2), r.steps, r.note ?? '']);
  log(table.toString());
  const targets = trainTargetRatios(rows);
  if (targets.length) {
    const t = textTable(['target (images/s ratio, same run)', 'measured', 'goal', '']);
    for (const r of targets) t.push([r.target, r.ratio.toFixed(2), `>= ${r.goal}`, r.ratio >= r.goal ? 'met' : 'missed']);
    log(t.toString());
  }
  if (opts.json) writeFileAtomic(opts.json, JSON.stringify({ rows, targets, notes, ...(opts.profile ? { profile: profiles } : {}) }, null, 2) + '\n');
  return rows;
}
