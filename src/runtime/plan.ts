// Execution plans: a captured graph (trace.ts) whose conv and linear layers run on the integer and bitwise
// kernels where their datatypes allow (layers.ts), everything else on the float ops.
//
// Fusion (what makes the integer path pay): an integer layer's int32 accumulators go through one epilogue
//   - a following batch norm is folded into the per-channel scale and offset, a following ReLU into the clamp;
//   - if the result only flows (through max pooling and reshapes) into one more int8 layer, the epilogue
//     requantizes straight into that layer's input codes with a fixed-point multiplier (Jacob et al. 2018),
//     and the max pooling runs on the codes (quantizers are monotone, so the max of codes is the code of the max);
//   - otherwise it writes floats (scale * acc + offset) for the float ops that follow (residual adds, global
//     pooling, the float last layer), and the next integer layer quantizes them with its own quantizer.
// Binary layers read bit-packed inputs: the input batch norm and sign of bnn/xnor are applied to the float
// value and packed (binarizePack); XNOR-Net's K scaling is applied to the float output as the simulation does.
//
// The residual stream stays in float because the fake-quantized model (what was trained and measured) keeps
// it in float: the runtime computes what the simulation computes, with integer arithmetic where it has any.

import * as ops from '../autograd/index.js';
import { noGrad } from '../autograd/graph.js';
import { convGeometry } from '../autograd/ops/conv.js';
import { batchNormEvalAffine } from '../autograd/ops/norm.js';
import { BatchNorm, type Conv2d, type Module } from '../nn/index.js';
import { engine, keep, tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { UNARY_OPS, type ConvGeometry, type IntEpilogue, type PostAffine, type UnaryOp, type WeightBits } from '../kernels/types.js';
import { LowbitError } from '../errors.js';
import { xnorBoxFilter } from '../quant/binary.js';
import { readerCounts, type GraphNode } from './trace.js';
import { runBandedStem, type StemChain } from './bands.js';
import { buildRuntimeLayer, disposeRuntimeLayer, type InputCodes, type LayerSpec, type RuntimeLayer } from './layers.js';

/** Convolution outputs (elements per image) from which a conv -> pool chain runs in row bands. */
const STEM_MIN_ELEMENTS = 1 << 19;

/** Float ops the runtime executes as they were traced. */
const FLOAT_UNARY = new Set<string>(UNARY_OPS);
/** Elementwise binary ops with broadcasting, by traced name. */
const FLOAT_BINARY: Record<string, (a: Tensor, b: Tensor) => Tensor> = {
  add: ops.add, sub: ops.sub, mul: ops.mul, div: ops.div, maximum: ops.maximum, minimum: ops.minimum,
};
const SUPPORTED = [
  'input', 'constant', 'conv', 'linear', 'batchNorm', 'convTranspose2d', 'reshape', 'maxPool2d', 'avgPool2d', 'globalAvgPool2d', 'concat', 'pad',
  ...Object.keys(FLOAT_BINARY), ...FLOAT_UNARY,
];

/** A node of the plan's graph with what the runtime needs to run it. */
export interface PlanNode extends Omit<GraphNode, 'module'> {
  /** conv / linear */
  layer?: RuntimeLayer;
  /** batchNorm: running statistics and affine parameters (eval), as the float module. */
  norm?: BatchNorm;
}

type Value =
  | { kind: 'float'; t: Tensor }
  | { kind: 'codes'; t: Tensor; codes: InputCodes }
  | { kind: 'bits'; t: Tensor };

export interface PlanOptions {
  /**
   * XNOR layers apply the batch norm, residual add and ReLU that follow them in their epilogue (default true;
   * false runs those as their own ops, with the same values: for tests and for finding where a result goes
   * wrong).
   */
  xnorEpilogueFusion?: boolean;
}

/** How an integer layer finishes: which nodes it absorbs and what it writes. */
/** The fewest bits (8, 4 or 2) whose signed range holds every weight code: int4 and ternary stay packed. */
function packedWeightBits(codes: Int8Array): WeightBits {
  let lo = 0, hi = 0;
  for (const c of codes) {
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  return lo >= -2 && hi <= 1 ? 2 : lo >= -8 && hi <= 7 ? 4 : 8;
}

interface IntegerStep {
  /** Nodes whose work the epilogue does (batch norm, ReLU); their value is the layer's. */
  fused: number[];
  /** Requantize into these codes (the consumer's input), or write floats. */
  target: InputCodes | null;
  packed: Tensor;
  /** Bits per packed weight (int8 family: the fewest of 8, 4, 2 that hold the layer's codes). */
  bits: WeightBits;
  /** Epilogue arrays in engine memory. */
  arrays: Tensor[];
  ep: IntEpilogue;
  /**
   * XNOR layers: the batch norm after the layer (then a residual add and a ReLU), applied by the epilogue after
   * K (see fuse); the residual is the node's second input.
   */
  post?: PostAffine;
}

/** The per-channel affine map y = scale * acc + offset an epilogue applies, and its clamp. */
interface EpilogueMap {
  scale: Float64Array;
  offset: Float64Array;
  lo: number;
  hi: number;
}

export interface PlanLayerSummary {
  name: string;
  kind: 'conv' | 'linear';
  family: RuntimeLayer['family'];
  weights: string;
  activations: string;
  weightBits: number;
  /** Bits per weight while the plan runs: packed integer weights (8, 4, 2), 1 for binary, 32 for float layers. */
  memoryBits: number;
  output: 'codes' | 'float' | 'bits';
  fused: string[];
  reason: string;
}

export class Plan {
  private readonly steps = new Map<number, IntegerStep>();
  /** Nodes whose value is another node's (fused into an epilogue, or identity). */
  private readonly aliasOf = new Map<number, number>();
  private readonly readers: number[];
  /** Reads of each computed value: a fused node's readers read the value of the layer it is fused into. */
  private valueReaders: number[] = [];
  private disposed = false;
  /** Evaluation scale and shift of the binary layers' input norms (by node id). */
  private readonly inputNormAffine = new Map<number, { scale: Tensor; shift: Tensor }>();
  /** Evaluation scale and shift of every batch-norm node (f32 tensors). */
  private readonly normAffine = new Map<number, { scale: Tensor; shift: Tensor }>();
  /** Float conv -> BN -> ReLU -> max-pool chains run in row bands (bands.ts), by the pool node. */
  private readonly skip = new Set<number>();
  private readonly stems = new Map<number, { chain: StemChain; conv: number; fused: number[] }>();
  /** Disposed with the plan (batch norms loaded from a file). */
  private readonly owned: { dispose(): void }[] = [];

  /** Nodes whose value depends on the input (their dimension 0 is the batch); the others are constants. */
  private readonly batched = new Set<number>();

  private constructor(readonly nodes: PlanNode[], readonly output: number, readonly inputShape: number[]) {
    this.readers = readerCounts({ nodes, output });
    for (const n of nodes) if (n.op === 'input' || n.inputs.some((i) => this.batched.has(i))) this.batched.add(n.id);
  }

  /** Compile a captured graph whose conv/linear nodes are described by `specs` (by layer name). */
  static compile(
    graph: { nodes: Omit<PlanNode, 'layer' | 'norm'>[]; output: number },
    specs: Map<string, LayerSpec>,
    norms: Map<string, BatchNorm>,
    owned: { dispose(): void }[] = [],
    opts: PlanOptions = {},
  ): Plan {
    const unsupported = graph.nodes.filter((n) => !SUPPORTED.includes(n.op));
    if (unsupported.length) {
      throw new LowbitError(`the runtime cannot run op${unsupported.length > 1 ? 's' : ''} ${[...new Set(unsupported.map((n) => n.op))].join(', ')}; it runs ${SUPPORTED.slice(1).join(', ')}`);
    }
    const nodes: PlanNode[] = graph.nodes.map((n) => ({ ...n }));
    // A failure part way (a graph read from a file may be inconsistent) frees what was built and what we own.
    let plan: Plan | null = null;
    try {
      for (const n of nodes) {
        if (n.op === 'conv' || n.op === 'linear') {
          const spec = specs.get(n.name!);
          if (!spec) throw new LowbitError(`runtime: no weights for layer ${n.name}`);
          n.layer = buildRuntimeLayer(spec);
        } else if (n.op === 'batchNorm') {
          const norm = norms.get(n.name!);
          if (!norm) throw new LowbitError(`runtime: no batch norm parameters for ${n.name}`);
          n.norm = norm;
        }
      }
      const p = new Plan(nodes, graph.output, nodes[0].shape);
      plan = p;
      p.owned.push(...owned);
      const affineOf = (bn: BatchNorm) => {
        const { scale, shift } = batchNormEvalAffine(bn, bn.opts.eps);
        return { scale: keep(Tensor.from(scale)), shift: keep(Tensor.from(shift)) };
      };
      for (const n of nodes) {
        if (n.norm) p.normAffine.set(n.id, affineOf(n.norm));
        const inputNorm = n.layer?.family === 'binary' ? n.layer.fq?.inputNorm : null;
        if (inputNorm) p.inputNormAffine.set(n.id, affineOf(inputNorm));
      }
      p.fuse(opts.xnorEpilogueFusion ?? true);
      p.findStems();
      p.releaseCompileData();
      return p;
    } catch (e) {
      if (plan) plan.dispose();
      else {
        for (const n of nodes) if (n.layer) disposeRuntimeLayer(n.layer);
        for (const o of owned) o.dispose();
      }
      // The quantizer tensors of layers never built are ours too (a built layer frees its own; twice is harmless).
      for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
      throw e;
    }
  }

  /** Big fp32 convolutions whose output only feeds (batch norm, ReLU and) a max pool: run them banded. */
  private findStems(): void {
    for (const c of this.nodes) {
      const l = c.layer;
      if (!l || l.family !== 'float' || l.fq || l.spec.kind !== 'conv' || c.shape.slice(1).reduce((a, b) => a * b, 1) < STEM_MIN_ELEMENTS) continue;
      const skipped = [c.id];
      let r = this.soleReader(c.id);
      let norm: StemChain['norm'] = null;
      if (r?.op === 'batchNorm') {
        norm = this.normAffine.get(r.id)!;
        skipped.push(r.id);
        r = this.soleReader(r.id);
      }
      let relu = false;
      if (r?.op === 'relu') {
        relu = true;
        skipped.push(r.id);
        r = this.soleReader(r.id);
      }
      if (r?.op !== 'maxPool2d') continue;
      this.stems.set(r.id, { chain: { conv: l.module as Conv2d, norm, relu, pool: r.attrs.opts as ops.Pool2dOptions }, conv: c.id, fused: [...skipped.slice(1), r.id] });
      for (const id of skipped) this.skip.add(id);
    }
  }

  /**
   * Drop what only compiling needed from the JS heap: weight codes and table indices (the kernels hold the
   * packed weights, float layers their modules). A binary ResNet-18 would otherwise keep ~22 MB of them.
   */
  private releaseCompileData(): void {
    for (const n of this.nodes) {
      const l = n.layer;
      if (!l) continue;
      l.codes = null;
      l.spec = { ...l.spec, floatWeight: null, weights: l.spec.weights && { ...l.spec.weights, index: new Uint8Array(0) } };
    }
  }

  private consumersOf(id: number): PlanNode[] {
    return this.nodes.filter((n) => n.inputs.includes(id));
  }

  /** The only node reading `id`, if exactly one does and it is not the output. */
  private soleReader(id: number): PlanNode | null {
    if (this.readers[id] !== 1 || id === this.output) return null;
    return this.consumersOf(id)[0] ?? null;
  }

  private fuse(xnorPost: boolean): void {
    for (const n of this.nodes) {
      const l = n.layer;
      if (!l || l.family === 'float') continue;
      const fused: number[] = [];
      let scale = Float64Array.from(l.weightScale!, (s) => s * (l.family === 'int8' ? l.input!.scale : 1));
      let offset = Float64Array.from({ length: l.spec.outChannels }, (_, c) => l.spec.bias?.[c] ?? 0);
      let lo = -Infinity;
      const hi = Infinity;
      let end = n.id;
      const xnorK = l.family === 'binary' && l.fq?.xnorScale;
      // XNOR-Net's output is (y - b) K + b = scale acc K + b: the epilogue writes scale acc, runInteger the rest.
      // K comes between the layer and a batch norm after it, so that norm (then a residual add and a ReLU) is
      // not folded into scale and offset but applied after K, with channelAffine's, add's and relu's
      // arithmetic: the same values.
      let post: PostAffine | undefined;
      if (xnorK) {
        offset.fill(0);
        const r = xnorPost ? this.soleReader(end) : null;
        if (r?.op === 'batchNorm' && r.norm) {
          const norm = this.normAffine.get(r.id)!;
          post = { scale: norm.scale.ptr, shift: norm.shift.ptr, relu: false };
          fused.push(r.id);
          end = r.id;
          let next = this.soleReader(end);
          const residual = next?.op === 'add' ? this.readyResidual(next, end, n.id) : null;
          if (next && residual !== null) {
            n.inputs = [...n.inputs, residual]; // read (and released) by this node now, as it was by the add
            fused.push(next.id);
            end = next.id;
            next = this.soleReader(end);
          }
          if (next?.op === 'relu') {
            post.relu = true;
            fused.push(next.id);
            end = next.id;
          }
        }
      } else {
        let r = this.soleReader(end);
        if (r?.op === 'batchNorm' && r.norm) {
          const { g, h } = foldedNorm(r.norm);
          scale = scale.map((s, c) => s * g[c]);
          offset = offset.map((o, c) => o * g[c] + h[c]);
          fused.push(r.id);
          end = r.id;
          r = this.soleReader(end);
        }
        if (r?.op === 'relu') {
          lo = 0;
          fused.push(r.id);
          end = r.id;
        }
      }
      for (const f of fused) this.aliasOf.set(f, n.id);
      // Requantize into the next int8 layer's codes if the value only flows there through pools and reshapes.
      let target: InputCodes | null = null;
      let walk = this.soleReader(end);
      while (walk && (walk.op === 'maxPool2d' || walk.op === 'reshape')) walk = this.soleReader(walk.id);
      if (walk?.layer?.family === 'int8' && walk.inputs.length === 1 && !xnorK) target = walk.layer.input; // K needs float
      const step = this.prepareStep(n, l, fused, target, { scale, offset, lo, hi });
      this.steps.set(n.id, post ? { ...step, post } : step);
    }
    this.valueReaders = [...this.readers];
    for (const [f, src] of this.aliasOf) this.valueReaders[src] += this.readers[f] - 1;
  }

  /**
   * The other operand of `add` (whose operand `mine` is layer `layer`'s chain) if the layer's epilogue can add
   * it: same shape (no broadcasting) and computed before the layer runs. In a ResNet block whose shortcut is
   * a convolution traced after the main branch, the shortcut's layer takes the add instead.
   */
  private readyResidual(add: PlanNode, mine: number, layer: number): number | null {
    if (add.inputs.length !== 2 || add.inputs[0] === add.inputs[1]) return null;
    const other = add.inputs[0] === mine ? add.inputs[1] : add.inputs[0];
    const src = this.aliasOf.get(other) ?? other;
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
    if (src >= layer || !same(this.nodes[other].shape, this.nodes[mine].shape)) return null;
    return other;
  }

  private prepareStep(n: PlanNode, l: RuntimeLayer, fused: number[], target: InputCodes | null, e: EpilogueMap): IntegerStep {
    const k = engine.kernels;
    const g = this.geometry(n, 1);
    const outC = l.spec.outChannels;
    const codes = Int8Array.from(l.codes!);
    const per = codes.length / outC;
    if (target) {
      // A negative scale (a batch norm with gamma < 0) becomes a positive multiplier of negated weights.
      for (let c = 0; c < outC; c++) {
        if (e.scale[c] >= 0) continue;
        for (let i = c * per; i < (c + 1) * per; i++) codes[i] = -codes[i];
        e.scale[c] = -e.scale[c];
      }
    }
    // The requantization constants first: a scale the fixed-point form cannot hold fails before any allocation.
    let requant: { bias: BigInt64Array; mult: Int32Array; shift: Int32Array } | null = null;
    if (target) {
      // code = round(acc * M + offset / s_out) + zero with M = scale / s_out; the offset goes in at the
      // multiplier's precision (units of 2^-(31 + shift) codes)
      requant = { bias: new BigInt64Array(outC), mult: new Int32Array(outC), shift: new Int32Array(outC) };
      for (let c = 0; c < outC; c++) {
        let q: { multiplier: number; shift: number };
        try {
          q = fixedPointMultiplier(e.scale[c] / target.scale);
        } catch (err) {
          throw new LowbitError(`layer ${l.spec.name}, output channel ${c}: ${(err as Error).message}; its scales do not fit the next layer's input scale`);
        }
        requant.mult[c] = q.multiplier;
        requant.shift[c] = q.shift;
        requant.bias[c] = BigInt(Math.round((e.offset[c] / target.scale) * 2 ** (31 + q.shift)));
      }
    }
    const arrays: Tensor[] = [];
    const made: Tensor[] = [];
    const own = <T extends Tensor>(t: T): T => {
      made.push(keep(t));
      return t;
    };
    try {
      const wT = own(Tensor.from(codes, [...(l.spec.kind === 'conv' ? [outC, l.spec.inChannels / (l.spec.config?.groups ?? 1), ...l.spec.kernel!] : [outC, l.spec.inChannels, 1, 1])], 'i8'));
      let packed: Tensor;
      let bits: WeightBits = 8;
      if (l.family === 'int8') {
        bits = packedWeightBits(codes);
        packed = own(Tensor.empty([k.int8PackedWeightBytes(g, bits)], 'u8'));
        k.int8PackWeights(g, wT.ptr, packed.ptr, bits);
      } else {
        const wf = own(Tensor.from(Float32Array.from(codes), wT.shape));
        packed = own(Tensor.empty([k.binaryPackedWeightBytes(g)], 'u8'));
        k.binaryPackWeights(g, wf.ptr, packed.ptr);
        wf.dispose();
      }
      wT.dispose();
      const arr = (v: ArrayLike<number>, dtype: 'f32' | 'i32') => {
        const t = own(Tensor.from(Array.from(v), [v.length], dtype));
        arrays.push(t);
        return t.ptr;
      };
      let ep: IntEpilogue;
      if (target && requant) {
        const lo = e.lo === 0 ? Math.max(target.lo, target.zero) : target.lo;
        const biasT = own(Tensor.empty([outC * 2], 'i32'));
        new BigInt64Array(biasT.view().buffer, biasT.ptr, outC).set(requant.bias);
        arrays.push(biasT);
        ep = { kind: 'requant', bias: biasT.ptr, multiplier: arr(requant.mult, 'i32'), shift: arr(requant.shift, 'i32'), zeroPoint: target.zero, lo, hi: target.hi, out: target.type };
      } else {
        ep = { kind: 'float', scale: arr(e.scale, 'f32'), offset: arr(e.offset, 'f32'), lo: e.lo, hi: e.hi };
      }
      return { fused, target, packed, bits, arrays, ep };
    } catch (err) {
      for (const t of made) t.dispose();
      throw err;
    }
  }

  private geometry(n: PlanNode, batch: number): ConvGeometry {
    const l = n.layer!;
    const inShape = this.nodes[n.inputs[0]].shape;
    if (l.spec.kind === 'linear') {
      return convGeometry([batch, l.spec.inChannels, 1, 1], [l.spec.outChannels, l.spec.inChannels, 1, 1], {});
    }
    const cfg = l.spec.config ?? {};
    return convGeometry([batch, inShape[1], inShape[2], inShape[3]], [l.spec.outChannels, l.spec.inChannels / (cfg.groups ?? 1), ...l.spec.kernel!], cfg);
  }

  /** Run the plan on a batch of float inputs [N, C, H, W]; returns the output as a new float tensor. */
  run(x: Tensor): Tensor {
    if (this.disposed) throw new Error('lowbit: the plan was disposed');
    const [, C, H, W] = this.inputShape;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W) {
      throw new LowbitError(`the model takes inputs of shape [N, ${C}, ${H}, ${W}], got [${x.shape.join(', ')}]`);
    }
    return noGrad(() => tidy(() => this.execute(x)));
  }

  /** Like run(), also returning every integer layer's input codes (tests compare them with the simulation). */
  runTraced(x: Tensor, onInput: (layer: string, v: { kind: string; t: Tensor }) => void): Tensor {
    return noGrad(() => tidy(() => this.execute(x, onInput)));
  }

  /** Time of every node of one run (ms), in execution order: where a plan spends its time. */
  profile(x: Tensor): { op: string; name: string; family: string; ms: number }[] {
    const out: { op: string; name: string; family: string; ms: number }[] = [];
    const y = noGrad(() => tidy(() => this.execute(x, undefined, (n, ms) => out.push({ op: n.op, name: n.name ?? '', family: n.layer?.family ?? '', ms }))));
    y.dispose();
    return out;
  }

  private execute(x: Tensor, onInput?: (layer: string, v: { kind: string; t: Tensor }) => void, onNode?: (n: PlanNode, ms: number) => void): Tensor {
    const N = x.shape[0];
    const values = new Map<number, Value>();
    const left = [...this.valueReaders];
    const valueOf = (id: number): Value => {
      const v = values.get(this.aliasOf.get(id) ?? id);
      if (!v) throw new Error(`lowbit: runtime: value of node ${id} is missing`);
      return v;
    };
    const release = (id: number) => {
      const src = this.aliasOf.get(id) ?? id;
      if (--left[src] <= 0 && src !== 0) {
        values.get(src)?.t.dispose();
        values.delete(src);
      }
    };
    values.set(0, { kind: 'float', t: x });
    for (const n of this.nodes) {
      if (n.op === 'input' || this.aliasOf.has(n.id) || this.skip.has(n.id)) continue;
      const stem = this.stems.get(n.id);
      if (stem) {
        // the whole chain from the convolution's input; that input is released as the convolution would
        const input = this.nodes[stem.conv].inputs[0];
        const t0 = onNode ? performance.now() : 0;
        values.set(n.id, { kind: 'float', t: tidy(() => runBandedStem(stem.chain, this.toFloat(valueOf(input)))) });
        if (onNode) onNode(this.nodes[stem.conv], performance.now() - t0); // profiled as its convolution
        release(input);
        continue;
      }
      const ins = n.inputs.map(valueOf);
      // The node may overwrite its (float) input if it is that value's last reader and the value owns its
      // storage (not the caller's input, not a reshaped view of another value).
      const src = this.aliasOf.get(n.inputs[0]) ?? n.inputs[0];
      const inPlace = n.inputs.length === 1 && src !== 0 && left[src] === 1 && this.nodes[src].op !== 'reshape' && ins[0].kind === 'float';
      const t0 = onNode ? performance.now() : 0;
      // Each node in its own scope: its temporaries (input norms, XNOR scales, packed bits) go as soon as it ends.
      const out = tidy(() => this.runNode(n, ins, N, inPlace, onInput));
      if (onNode) onNode(n, performance.now() - t0);
      values.set(n.id, out);
      if (inPlace && out.t === ins[0].t) values.delete(src); // the storage now belongs to this node's value
      for (const i of n.inputs) release(i);
    }
    const y = valueOf(this.output);
    return y.kind === 'float' ? y.t : this.toFloat(y);
  }

  private toFloat(v: Value): Tensor {
    if (v.kind === 'float') return v.t;
    if (v.kind === 'codes') return ops.mulScalar(ops.addScalar(ops.cast(v.t, 'f32'), -v.codes.zero), v.codes.scale);
    throw new Error('lowbit: runtime: a bit-packed value has no float form here');
  }

  private runNode(n: PlanNode, ins: Value[], N: number, inPlace: boolean, onInput?: (layer: string, v: { kind: string; t: Tensor }) => void): Value {
    const a = n.attrs;
    const batchShape = this.batched.has(n.id) ? [N, ...n.shape.slice(1)] : n.shape;
    switch (n.op) {
      case 'conv':
      case 'linear': {
        const l = n.layer!;
        const step = this.steps.get(n.id);
        if (!step) {
          const xin = this.toFloat(ins[0]);
          onInput?.(l.spec.name, { kind: 'float', t: xin });
          return { kind: 'float', t: l.module.forward(xin) };
        }
        return this.runInteger(n, l, step, ins[0], N, onInput, ins[1]);
      }
      case 'batchNorm': {
        // y = scale x + shift (the op's own evaluation arithmetic), in place when the input is not read again
        const x = this.toFloat(ins[0]);
        const { scale, shift } = this.normAffine.get(n.id)!;
        const y = inPlace ? x : Tensor.empty(x.shape);
        engine.kernels.channelAffine(x.ptr, scale.ptr, shift.ptr, y.ptr, x.shape[0], x.shape[1], x.rank === 4 ? x.shape[2] * x.shape[3] : 1);
        return { kind: 'float', t: y };
      }
      case 'reshape': {
        const v = ins[0];
        return { ...v, t: v.t.reshapeView(batchShape) } as Value;
      }
      case 'maxPool2d': {
        const v = ins[0];
        const opts = a.opts as ops.Pool2dOptions;
        if (v.kind === 'codes') {
          const g = ops.poolGeometry('maxPool2d', v.t, opts);
          const y = Tensor.empty([v.t.shape[0], v.t.shape[1], g.outH, g.outW], v.codes.type);
          engine.kernels.maxPoolInt8(g, v.t.ptr, v.codes.type, y.ptr);
          return { kind: 'codes', t: y, codes: v.codes };
        }
        return { kind: 'float', t: ops.maxPool2d(this.toFloat(v), opts) };
      }
      case 'avgPool2d':
        return { kind: 'float', t: ops.avgPool2d(this.toFloat(ins[0]), a.opts as ops.Pool2dOptions) };
      case 'globalAvgPool2d':
        return { kind: 'float', t: ops.globalAvgPool2d(this.toFloat(ins[0])) };
      case 'constant':
        // a tensor the model computes without its input (a GraphModule's constants, folded parameters)
        return { kind: 'float', t: Tensor.from(a.value as Float32Array, n.shape) };
      case 'convTranspose2d': // float (an imported graph's op; its weights are a constant input, its bias a later add)
        return { kind: 'float', t: ops.convTranspose2d(this.toFloat(ins[0]), this.toFloat(ins[1]), null, a.opts as ops.ConvTranspose2dOptions) };
      case 'concat':
        return { kind: 'float', t: ops.concat(ins.map((v) => this.toFloat(v)), a.axis as number) };
      case 'pad':
        return { kind: 'float', t: ops.pad(this.toFloat(ins[0]), a.pads as [number, number][], a.value as number) };
      default:
        if (FLOAT_BINARY[n.op]) return { kind: 'float', t: FLOAT_BINARY[n.op](this.toFloat(ins[0]), this.toFloat(ins[1])) };
        if (FLOAT_UNARY.has(n.op)) {
          const x = this.toFloat(ins[0]);
          if (!inPlace) return { kind: 'float', t: ops.unaryOp(n.op as never, x, a.a as number, a.b as number) };
          engine.kernels.unary(n.op as UnaryOp, x.ptr, x.ptr, x.size, a.a as number, a.b as number);
          return { kind: 'float', t: x };
        }
        throw new LowbitError(`runtime: op ${n.op} is not supported`);
    }
  }

  private runInteger(n: PlanNode, l: RuntimeLayer, step: IntegerStep, input: Value, N: number, onInput?: (layer: string, v: { kind: string; t: Tensor }) => void, residual?: Value): Value {
    const k = engine.kernels;
    const g = this.geometry(n, N);
    const outShape = l.spec.kind === 'conv' ? [N, g.outC, g.outH, g.outW] : [N, g.outC];
    let K: Tensor | null = null;
    let xq: Value;
    if (l.family === 'int8') {
      xq = input.kind === 'codes' ? input : this.quantizeInput(l, this.toFloat(input));
      if (xq.kind !== 'codes') throw new Error('unreachable');
      onInput?.(l.spec.name, xq);
    } else {
      // binary: input norm, sign, pack and (XNOR-Net) the channel mean A of |normalized input|, in one pass;
      // K is A box-filtered like the convolution, as the simulation computes it.
      const h = this.toFloat(input);
      const norm = this.inputNormAffine.get(n.id);
      const bits = Tensor.empty([N * g.inH * g.inW * Math.ceil(g.inC / 64) * 8], 'u8');
      const A = l.fq?.xnorScale ? Tensor.empty([N, 1, g.inH, g.inW]) : null;
      k.binarizePack(h.ptr, N, g.inC, g.inH, g.inW, bits.ptr, { norm: norm ? { scale: norm.scale.ptr, shift: norm.shift.ptr } : undefined, absMean: A?.ptr });
      xq = { kind: 'bits', t: bits };
      onInput?.(l.spec.name, { kind: 'bits', t: bits });
      if (A) K = this.xnorScale(l, A);
    }
    let y: Tensor;
    let result: Value;
    if (step.target) {
      y = Tensor.empty(outShape, step.target.type);
      result = { kind: 'codes', t: y, codes: step.target };
    } else {
      y = Tensor.empty(outShape);
      result = { kind: 'float', t: y };
    }
    if (l.family === 'int8') {
      const c = (xq as { codes: InputCodes }).codes;
      k.convInt8(g, xq.t.ptr, c.type, c.zero, step.packed.ptr, step.ep, y.ptr, step.bits);
    } else if (K && step.ep.kind === 'float') {
      // XNOR-Net: out = (y - b) K + b with y - b = scale acc (the epilogue's affine left b out)
      const post = step.post && n.inputs.length > 1 ? { ...step.post, residual: this.toFloat(residual!).ptr } : step.post;
      k.convBinary(g, xq.t.ptr, step.packed.ptr, { ...step.ep, pixelScale: K.ptr, bias: l.module.bias?.ptr, post }, y.ptr);
    } else {
      if (K) throw new Error(`lowbit: ${l.spec.name}: XNOR-Net's K needs a float epilogue`);
      k.convBinary(g, xq.t.ptr, step.packed.ptr, step.ep, y.ptr);
    }
    return result;
  }

  /** XNOR-Net's K from A, the channel mean of |h| (binary.ts xnorInputScale): box-filtered like the conv. */
  private xnorScale(l: RuntimeLayer, A: Tensor): Tensor {
    if (l.spec.kind === 'linear') return A.reshapeView([A.shape[0], 1]);
    const c = l.spec.config ?? {};
    return xnorBoxFilter(A, { kernel: l.spec.kernel!, stride: c.stride ?? 1, padding: c.padding ?? 0 });
  }

  /**
   * Float input -> the layer's codes: its quantizer's own codes where it gives them, else (DoReFa, which
   * scales first) its fake-quantized values as value / scale + zero (exact integers).
   */
  private quantizeInput(l: RuntimeLayer, x: Tensor): Value {
    const c = l.input!;
    let codes = l.fq!.inputCodes(x);
    if (!codes) codes = ops.round(ops.addScalar(ops.mulScalar(l.fq!.quantizeInput(x), 1 / c.scale), c.zero));
    return { kind: 'codes', t: codes.dtype === c.type ? codes : ops.cast(codes, c.type), codes: c };
  }

  /** One line per conv/linear layer: kernel family, datatypes, what its epilogue writes, why. */
  summary(): PlanLayerSummary[] {
    return this.nodes.filter((n) => n.layer).map((n) => {
      const l = n.layer!;
      const step = this.steps.get(n.id);
      const stem = [...this.stems.values()].find((s) => s.conv === n.id);
      const fused = step?.fused ?? stem?.fused ?? [];
      return {
        name: l.spec.name,
        kind: l.spec.kind,
        family: l.family,
        weights: l.spec.quant?.weight ?? 'fp32',
        activations: l.spec.quant?.activation ?? 'fp32',
        weightBits: l.spec.weights ? l.spec.weights.bits : 32,
        memoryBits: l.family === 'int8' ? step!.bits : l.family === 'binary' ? 1 : 32,
        output: step?.target ? 'codes' : 'float',
        fused: fused.map((f) => this.nodes[f].op),
        reason: l.reason + (stem ? '; computed in row bands with what it feeds' : ''),
      };
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.steps.values()) {
      s.packed.dispose();
      for (const t of s.arrays) t.dispose();
    }
    for (const n of this.nodes) {
      if (n.layer) disposeRuntimeLayer(n.layer);
    }
    for (const o of this.owned) o.dispose();
    for (const { scale, shift } of [...this.normAffine.values(), ...this.inputNormAffine.values()]) {
      scale.dispose();
      shift.dispose();
    }
  }
}

/** Batch norm in evaluation as y = g x + h per channel, the f32 values the op uses. */
export function foldedNorm(bn: BatchNorm): { g: Float32Array; h: Float32Array } {
  const { scale, shift } = batchNormEvalAffine(bn, bn.opts.eps);
  return { g: scale, h: shift };
}

/**
 * A real multiplier M >= 0 as M0 * 2^-(31 + shift) with M0 in [2^30, 2^31) (Jacob et al. 2018, sec. 2.2),
 * shift chosen so that the kernel's total right shift 31 + shift stays in [1, 62].
 */
export function fixedPointMultiplier(M: number): { multiplier: number; shift: number } {
  if (!(M > 0) || !Number.isFinite(M)) return { multiplier: 0, shift: 0 };
  let e = Math.floor(Math.log2(M)); // M = m 2^e with m in [1, 2)
  let m0 = Math.round((M / 2 ** e) * 2 ** 30);
  if (m0 >= 2 ** 31) { m0 /= 2; e += 1; }
  // M = m0 2^(e - 30) = m0 2^-(31 + shift)  =>  shift = -e - 1
  let shift = -e - 1;
  if (31 + shift > 62) return { multiplier: 0, shift: 0 }; // below 2^-32 of a step: nothing survives
  if (31 + shift < 1) throw new LowbitError(`requantization multiplier ${M} is too large (over 2^30)`);
  return { multiplier: m0, shift };
}

/** Batch norm modules of a model by name. */
export function normsOf(model: Module): Map<string, BatchNorm> {
  return new Map(model.namedModules().filter(([, m]) => m instanceof BatchNorm) as [string, BatchNorm][]);
}
