/**
 * Peer rows for `lowbit bench runtime`: onnxruntime-node (native CPU) and onnxruntime-web (its
 * WebAssembly backend, inside Node) on whole networks and on the ResNet conv layer, float (Conv) and
 * int8 (QDQ graphs that onnxruntime fuses into QLinearConv / QLinearAdd / QGemm), batch 1:
 *
 *   conv3x3-64-56  conv 3x3 64->64, pad 1, 1x64x56x56       115.6 M MACs
 *   lenet5         1x1x28x28                                  0.42 M MACs
 *   resnet20       CIFAR, 1x3x32x32                          40.8 M MACs
 *   resnet18       ImageNet, 1x3x224x224, random weights     1814 M MACs
 *
 * The graphs are built by bench/onnx-networks.ts. The int8 graphs' activation scales come from one
 * float run of the same network with onnxruntime-node on the benchmark input (min/max calibration);
 * weights are int8 symmetric per output channel.
 *
 * Measuring reuses bench/peers.ts (`measurePeers` with 'model' cases): onnxruntime-node runs in this
 * thread with `intraOpNumThreads = threads`; onnxruntime-web runs in one worker_thread per thread
 * count; a soak, then per case warm-up and timed runs, ms = median; each timed run feeds the float
 * input and reads the float output back. gops = 2 * MACs / (ms * 1e6) with the MACs of
 * `runtimeNetworkMacs()` (convs + fc only), the definition lowbit's own rows must use too.
 * A peer that cannot run a case gives ms NaN and a note; nothing throws because a peer is missing.
 */
import { pseudoRandom, type OnnxModel } from './onnx-builders.js';
import {
  NETWORK_NAMES,
  activationTensors,
  floatNetworkModel,
  int8NetworkModel,
  networkMacs,
  networkSpec,
  rangesFromActivations,
  type ActivationRanges,
  type NetworkDtype,
  type NetworkName,
  type NetworkSpec,
} from './onnx-networks.js';
import { measurePeers, type BenchCase, type BenchRow } from './peers.js';
import type * as OrtNodeNs from 'onnxruntime-node';

export { NETWORK_NAMES, type NetworkName, type NetworkDtype };

export const RUNTIME_PEER_IMPLS = ['onnxruntime-node', 'onnxruntime-web'] as const;
export type RuntimePeerImpl = (typeof RUNTIME_PEER_IMPLS)[number];
export const RUNTIME_PEER_DTYPES: readonly NetworkDtype[] = ['fp32', 'int8'];

export interface RuntimePeerRow {
  name: NetworkName;
  impl: RuntimePeerImpl;
  dtype: NetworkDtype;
  threads: number;
  /** Median ms of one batch-1 inference (NaN when the peer could not run it; see note). */
  ms: number;
  /** 2 * MACs / (ms * 1e6). */
  gops: number;
  note?: string;
}

export interface RuntimePeerOptions {
  threads: number[];
  runs: number;
  warmup: number;
  /**
   * Keep only these networks, peer impls and/or dtypes ('fp32', 'int8'); entries naming none of
   * them (e.g. lowbit's own impls or dtypes) are ignored. No network named -> all networks; likewise
   * for impls and dtypes.
   */
  only?: string[];
  /** Minimum wall time of each case's warm-up, ms (default 250). */
  minWarmupMs?: number;
  /** onnxruntime-web: round-robin soak before timing, ms (default 3000). */
  soakMs?: number;
  /** Give up on one (peer, threads) worker after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Called with each row as soon as it is measured. */
  onRow?: (row: RuntimePeerRow) => void;
}

/** Multiply-adds of one batch-1 inference of each network (convs + fully-connected layers). */
export function runtimeNetworkMacs(): Record<NetworkName, number> {
  const out = {} as Record<NetworkName, number>;
  for (const n of NETWORK_NAMES) out[n] = networkMacs(n);
  return out;
}

/** Seed of the benchmark input: the same as bench/peers.ts feeds its cases (SEED_IN). */
const INPUT_SEED = 1;

/** The deterministic benchmark input of a network (values in [-1, 1), the input peers.ts feeds). */
export function networkInput(spec: NetworkSpec): Float32Array {
  return pseudoRandom(spec.input.dims.reduce((a, b) => a * b, 1), INPUT_SEED);
}

async function loadOrtNode(): Promise<typeof OrtNodeNs> {
  const mod = (await import('onnxruntime-node')) as typeof OrtNodeNs & { default?: typeof OrtNodeNs };
  const ort = (mod.InferenceSession ? mod : mod.default) as typeof OrtNodeNs;
  if (!ort?.InferenceSession) throw new Error('onnxruntime-node loaded but exports no InferenceSession');
  return ort;
}

/** Run a float graph once with onnxruntime-node; returns every graph output by name. */
export async function runOrtNode(model: OnnxModel, input: Float32Array, threads = 1): Promise<Record<string, Float32Array>> {
  const ort = await loadOrtNode();
  const session = await ort.InferenceSession.create(model.bytes, {
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  try {
    const io = model.inputs[0]!;
    const res = await session.run({ [io.name]: new ort.Tensor('float32', input, io.dims) });
    const out: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(res)) out[k] = Float32Array.from(t.data as Float32Array);
    return out;
  } finally {
    await session.release();
  }
}

/**
 * Min/max calibration of a network's activations: one float run with onnxruntime-node on `input`
 * (default: the benchmark input) of the graph with every quantized tensor exposed as an output.
 */
export async function calibrateNetwork(spec: NetworkSpec, input: Float32Array = networkInput(spec)): Promise<ActivationRanges> {
  const values: Record<string, ArrayLike<number>> = await runOrtNode(floatNetworkModel(spec, { exposeActivations: true }), input);
  values[spec.input.name] = input;
  const ranges = rangesFromActivations(spec, values);
  for (const t of activationTensors(spec)) {
    const r = ranges[t]!;
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new Error(`${spec.name}: non-finite activations in '${t}'`);
  }
  return ranges;
}

/** Both ONNX forms of a network (int8 calibrated with `calibrateNetwork`). */
export async function buildRuntimeModels(name: NetworkName): Promise<{ spec: NetworkSpec; fp32: OnnxModel; int8: OnnxModel; ranges: ActivationRanges }> {
  const spec = networkSpec(name);
  const ranges = await calibrateNetwork(spec);
  return { spec, fp32: floatNetworkModel(spec), int8: int8NetworkModel(spec, ranges), ranges };
}

/**
 * The measured cases, built once per process (ResNet-18's graphs take about a second to build and
 * calibrate, and `bench runtime` may measure several rounds).
 */
const caseCache = new Map<string, Promise<BenchCase>>();

function runtimeCase(name: NetworkName, dtype: NetworkDtype): Promise<BenchCase> {
  const key = `${name}${SEP}${dtype}`;
  let c = caseCache.get(key);
  if (!c) {
    c = (async (): Promise<BenchCase> => {
      const spec = networkSpec(name);
      const m = dtype === 'fp32' ? floatNetworkModel(spec) : int8NetworkModel(spec, await calibrateNetwork(spec));
      return { name: key, kind: 'model', model: { bytes: m.bytes, input: spec.input, output: spec.output.name }, flops: 2 * spec.macs };
    })();
    caseCache.set(key, c);
    c.catch(() => caseCache.delete(key));
  }
  return c;
}

const INT8_NOTE = 'QDQ graph: uint8 activations, int8 per-channel weights (fused to QLinearConv/QLinearAdd/QGemm)';
const SEP = '/';

function select<T extends string>(all: readonly T[], only: string[] | undefined): T[] {
  const want = (only ?? []).filter((o): o is T => (all as readonly string[]).includes(o));
  return want.length > 0 ? all.filter((a) => want.includes(a)) : [...all];
}

/**
 * Measure onnxruntime-node and onnxruntime-web on every (network, dtype) for each thread count.
 * Rows come back ordered by network (NETWORK_NAMES order), dtype (fp32, int8), impl, threads.
 */
export async function measureRuntimePeers(opts: RuntimePeerOptions): Promise<RuntimePeerRow[]> {
  const names = select(NETWORK_NAMES, opts.only);
  const impls = select(RUNTIME_PEER_IMPLS, opts.only);
  const dtypes = select(RUNTIME_PEER_DTYPES, opts.only);
  const threads = opts.threads.length > 0 ? opts.threads : [1];

  const cases: BenchCase[] = [];
  const failed: RuntimePeerRow[] = [];
  for (const name of names) {
    for (const dtype of dtypes) {
      try {
        cases.push(await runtimeCase(name, dtype));
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        const note = `${dtype} graph not built: ${dtype === 'int8' ? 'calibration with onnxruntime-node failed: ' : ''}${why}`;
        for (const impl of impls) for (const t of threads) failed.push({ name, impl, dtype, threads: t, ms: NaN, gops: NaN, note });
      }
    }
  }

  const toRow = (r: BenchRow): RuntimePeerRow => {
    const [name, dtype] = r.name.split(SEP) as [NetworkName, NetworkDtype];
    const row: RuntimePeerRow = { name, impl: r.impl as RuntimePeerImpl, dtype, threads: r.threads, ms: r.ms, gops: r.gops };
    const note = [dtype === 'int8' ? INT8_NOTE : '', r.note ?? ''].filter(Boolean).join('; ');
    if (note) row.note = note;
    return row;
  };
  for (const r of failed) opts.onRow?.(r);
  const measured =
    cases.length === 0
      ? []
      : await measurePeers(cases, {
          warmup: opts.warmup,
          runs: opts.runs,
          threads,
          only: [...impls],
          minWarmupMs: opts.minWarmupMs,
          soakMs: opts.soakMs,
          timeoutMs: opts.timeoutMs,
          onRow: opts.onRow ? (r) => opts.onRow!(toRow(r)) : undefined,
        });
  const rows = [...measured.map(toRow), ...failed];
  const order = (r: RuntimePeerRow) => [NETWORK_NAMES.indexOf(r.name), RUNTIME_PEER_DTYPES.indexOf(r.dtype), RUNTIME_PEER_IMPLS.indexOf(r.impl), r.threads];
  rows.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  });
  return rows;
}
