// Fake quantization of one conv or linear layer: the quantizers of its scheme installed as the layer's hooks
// (Conv2d.quant / Linear.quant), simulating in f32 what the integer or bitwise layer computes. PTQ and QAT
// both build these; torch.ao's split is kept: observers (observers.ts) choose ranges, this file simulates, and
// the integer runtime (src/runtime, issue 6) runs the codes.
//
//   y = output( op( input(x), weight(W), b ), x )
//   weight(W) = gain * q_w(W)          the paper's rule; `gain` is 1 except for datatypes whose values carry no
//                                      scale: DoReFa k > 1 (values in [-1, 1]) gets max|W|, fixed at installation
//                                      from the float weights. On a network without batch norm (LeNet-5) unscaled
//                                      weights would multiply every layer's output by ~1/mean|W|; the constant is
//                                      one f32 per layer that a following BN or the integer requantization absorbs.
//              = H q_w(W / H)          BinaryConnect and BNN (binary, binary:stochastic, bnn): the weights are +-H,
//                                      as in the authors' code (BinaryConnect's binary_connect.py, BinaryNet:
//                                      Wb = +-H, p = hard_sigmoid(W / H), latent W clipped to [-H, H]); lowbit
//                                      takes H = mean|W| of the float layer (the code's Glorot constant would
//                                      ignore the trained weights' scale).
//   input(x)   = q_a(x)                activation quantizer with calibrated (PTQ) or moving-average (QAT) ranges;
//                                      DoReFa's quantize_k(clip(x, 0, 1)) is applied to x / s_a (s_a calibrated:
//                                      the paper assumes inputs already in [0, 1]);
//                                      bnn and xnor binarize BN(x): XNOR-Net's block is BN -> BinActiv -> BinConv
//                                      (Rastegari et al. 2016, Fig. 3) and BNN normalizes before every sign; the
//                                      zoo's LeNet-5 has no batch norm, so the binarized layers get their own
//                                      (trained in QAT, running statistics in PTQ). Without it sign(ReLU(x)) = +1.
//   output(y)  = xnor: (y - b) K + b   XNOR-Net's input scale K = A * k (eq. 11) computed from BN(x)
//                gradient quantizer    DoReFa's g<k>: identity forward, quantized gradient backward
//
// In evaluation mode the quantized weights are computed once and cached (until the layer trains again), and
// quantizers with randomness are made deterministic: stochastic rounding becomes round-to-nearest, stochastic
// binarization becomes sign (deterministic()); anything else random is drawn with a fixed seed.

import * as ops from '../autograd/index.js';
import { noGrad } from '../autograd/graph.js';
import { BatchNorm, Conv2d } from '../nn/index.js';
import { keep, tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { LowbitError } from '../errors.js';
import type { LayerScheme } from './spec.js';
import type { Quantizer } from './quantizer.js';
import { AffineQuantizer, affineCodes, chooseAffineParams, type AffineParams } from './affine.js';
import { perChannel } from './quantizer.js';
import { DynamicFixedPointQuantizer, FixedPointQuantizer, rangeFracLength } from './fixed.js';
import { LogQuantizer, logFsr, InqQuantizer } from './log2.js';
import { BinaryConnectQuantizer, SignQuantizer, xnorInputScale } from './binary.js';
import { DorefaActivationQuantizer, DorefaWeightQuantizer } from './dorefa.js';
import { TtqQuantizer } from './ternary.js';
import { KMeansQuantizer } from './kmeans.js';
import { MovingAverageMinMaxObserver, createObserver, type CalibrationMethod, type Observer, type Range } from './observers.js';
import type { QuantizableLayer } from './graph.js';

/** max |range| over its channels. */
function rangeMaxAbs(r: Range): number {
  let m = 0;
  for (let i = 0; i < r.min.length; i++) m = Math.max(m, -r.min[i], r.max[i]);
  return m;
}

/** True if an activation quantizer's parameters come from an observed range. */
export function isCalibrated(q: Quantizer): boolean {
  return q instanceof AffineQuantizer || q instanceof DynamicFixedPointQuantizer || q instanceof LogQuantizer || q instanceof DorefaActivationQuantizer;
}

/** The parameters of a range-calibrated activation quantizer for a range (undefined for the others). */
export function paramsFromRange(q: Quantizer, r: Range): unknown {
  if (q instanceof AffineQuantizer) return chooseAffineParams(r.min, r.max, { qmin: q.qmin, qmax: q.qmax, symmetric: q.symmetric, axis: r.axis });
  if (q instanceof DynamicFixedPointQuantizer) return { fracLength: rangeFracLength(rangeMaxAbs(r), q.wordLength, q.signed) };
  if (q instanceof LogQuantizer) return { fsr: logFsr(rangeMaxAbs(r)) };
  return undefined;
}

/** Levels a datatype has for magnitudes |x| over a range (TensorRT's entropy calibration compares against them). */
export function magnitudeLevels(q: Quantizer, r: Range): number {
  const nonNegative = r.min.every((v) => v >= 0);
  if (q instanceof AffineQuantizer) return nonNegative && !q.symmetric ? q.qmax - q.qmin : Math.floor((q.qmax - q.qmin) / 2);
  if (q instanceof DorefaActivationQuantizer) return 2 ** q.bits - 1;
  return 2 ** Math.max(1, q.bits - 1);
}

/**
 * A version of q without randomness for evaluation, or q itself: stochastic rounding -> nearest; stochastic
 * binarization -> sign (BinaryConnect sec. 2.6, method 1: the deployed network is the deterministic binary one;
 * the paper's own stochastic results use the real-valued weights, which would not be a binary network).
 */
function deterministic(q: Quantizer): Quantizer {
  if (q instanceof BinaryConnectQuantizer && q.stochastic) return new BinaryConnectQuantizer(false, { role: q.role });
  if (q instanceof FixedPointQuantizer && q.rounding === 'stochastic') {
    return new FixedPointQuantizer(q.wordLength, q.fracLength, { signed: q.signed, role: q.role });
  }
  if (q instanceof DynamicFixedPointQuantizer && q.rounding === 'stochastic') {
    return new DynamicFixedPointQuantizer(q.wordLength, { signed: q.signed, role: q.role, scaleUpdate: q.scaleUpdate });
  }
  return q;
}

function seedsOf(q: Quantizer): { reset(seed: number): void } | null {
  const s = (q as { seeds?: { reset(seed: number): void } }).seeds;
  return s && typeof s.reset === 'function' ? s : null;
}

export type FakeQuantMode = 'quantize' | 'calibrate' | 'float';

export interface FakeQuantOptions {
  /** Seed of this layer's random draws. */
  seed?: number;
  /** Calibration method of the activation observer. */
  method?: CalibrationMethod;
  percentile?: number;
  /** Give bnn/xnor inputs their own batch norm (default true). */
  binaryInputNorm?: boolean;
}

/** What a layer's quantization state serializes to (tensors go beside it in the model file). */
export interface FakeQuantState {
  weight: string | null;
  activation: string | null;
  gradient: string | null;
  seed: number;
  gain: number;
  gainInside: boolean;
  activationScale: number;
  persistentWeightParams: boolean;
  weightParams: unknown;
  activationParams: unknown;
  activationRange: Range | null;
  ema: { min: number[]; max: number[]; batches: number } | null;
  inputNorm: boolean;
  xnorScale: boolean;
}

/** Replace tensors in a params object by references into `tensors` (and back with decodeParams). */
export function encodeParams(v: unknown, key: string, tensors: Map<string, Tensor>): unknown {
  if (v instanceof Tensor) {
    tensors.set(key, v);
    return { $tensor: key };
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeParams(x, `${key}.${i}`, tensors));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeParams(x, `${key}.${k}`, tensors)]));
  return v;
}

export function decodeParams(v: unknown, tensors: Map<string, Tensor>): unknown {
  if (Array.isArray(v)) return v.map((x) => decodeParams(x, tensors));
  if (v !== null && typeof v === 'object') {
    const ref = (v as { $tensor?: unknown }).$tensor;
    if (typeof ref === 'string') {
      const t = tensors.get(ref);
      if (!t) throw new LowbitError(`quantized model: tensor ${ref} is missing from the file`);
      return t;
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeParams(x, tensors)]));
  }
  return v;
}

/** Tensors inside a params object (to dispose, or to train). */
function tensorsIn(v: unknown, out: Tensor[] = []): Tensor[] {
  if (v instanceof Tensor) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => tensorsIn(x, out));
  else if (v !== null && typeof v === 'object') Object.values(v).forEach((x) => tensorsIn(x, out));
  return out;
}

export class FakeQuantLayer {
  readonly weight: Quantizer | null;
  readonly activation: Quantizer | null;
  readonly gradient: Quantizer | null;
  /** The quantizers used in evaluation (no randomness). */
  private readonly evalWeightQuantizer: Quantizer | null;
  private readonly evalActivation: Quantizer | null;
  /** Parameters of the weight quantizer for evaluation; in training too when persistentWeightParams. */
  weightParams: unknown = undefined;
  /** TTQ scales, k-means codebooks, INQ windows and masks live through training; other parameters follow W. */
  persistentWeightParams = false;
  activationParams: unknown = undefined;
  activationRange: Range | null = null;
  gain = 1;
  /** The weights are divided by the gain before quantizing (BinaryConnect's and BNN's H). */
  gainInside = false;
  /** DoReFa activations: quantize_k(clip(x / s_a, 0, 1)) s_a. */
  activationScale = 1;
  inputNorm: BatchNorm | null = null;
  xnorScale = false;
  mode: FakeQuantMode = 'quantize';
  observer: Observer | null = null;
  /** QAT: moving averages of the input range while training. */
  ema: MovingAverageMinMaxObserver | null = null;
  /** Sum of per-channel input means over calibration batches (bias correction). */
  inputMeanSum: number[] | null = null;
  inputMeanBatches = 0;
  readonly seed: number;
  private cachedWeight: Tensor | null = null;
  private cachedCodes: { w: Tensor; grid: Tensor; dispose(): void } | null = null;
  private pendingScale: Tensor | null = null;

  constructor(readonly name: string, readonly layer: QuantizableLayer, readonly scheme: LayerScheme, readonly opts: FakeQuantOptions = {}) {
    this.seed = opts.seed ?? 0;
    const wrap = <T>(role: string, f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw layerError(name, role, e);
      }
    };
    this.weight = wrap('weight', () => scheme.weight?.create({ seed: this.seed }) ?? null);
    this.activation = wrap('activation', () => scheme.activation?.create({ seed: this.seed + 1 }) ?? null);
    this.gradient = wrap('gradient', () => scheme.gradient?.create({ seed: this.seed + 2 }) ?? null);
    this.evalActivation = this.activation ? deterministic(this.activation) : null;
    this.evalWeightQuantizer = this.weight ? deterministic(this.weight) : null;
    if (this.activation instanceof SignQuantizer) {
      if (opts.binaryInputNorm ?? true) this.inputNorm = new BatchNorm(layer instanceof Conv2d ? layer.inChannels : layer.inFeatures);
      this.xnorScale = this.activation.spec === 'xnor';
    }
    if (this.weight instanceof DorefaWeightQuantizer && this.weight.bits > 1) this.gain = wrap('weight', () => absStat(layer.weight, 'max'));
    if (this.weight instanceof BinaryConnectQuantizer || this.weight instanceof SignQuantizer) {
      this.gain = wrap('weight', () => absStat(layer.weight, 'mean'));
      this.gainInside = true;
    }
  }

  /** Whether anything of the layer is quantized. */
  get active(): boolean {
    return !!(this.weight || this.activation || this.gradient);
  }

  install(): void {
    this.layer.quant = {
      weight: this.weight ? (w) => this.weightHook(w) : undefined,
      input: (x) => this.inputHook(x),
      output: this.xnorScale || this.gradient ? (y) => this.outputHook(y) : undefined,
      codes: (x, op) => this.codesHook(x, op),
    };
  }

  /** Remove the hooks: the layer computes in float again. */
  remove(): void {
    if (this.layer.quant) this.layer.quant = null;
    this.invalidate();
  }

  /** Forget the cached evaluation weights (call after changing W or the parameters). */
  invalidate(): void {
    this.cachedWeight?.dispose();
    this.cachedWeight = null;
    this.cachedCodes?.dispose();
    this.cachedCodes = null;
  }

  /** Create the weight parameters that live through training (TTQ scales, k-means codebook, INQ window). */
  initPersistentParams(): void {
    const q = this.weight;
    if (!(q instanceof TtqQuantizer || q instanceof KMeansQuantizer || q instanceof InqQuantizer)) return;
    this.weightParams = this.guard('weight', () => q.params(this.layer.weight));
    this.persistentWeightParams = true;
  }

  /** Fix the weight parameters for evaluation from the current weights (persistent ones are kept). */
  freezeWeightParams(): void {
    this.invalidate();
    if (!this.weight || this.persistentWeightParams) return;
    const q = this.weight;
    this.weightParams = this.guard('weight', () => tidy(() => q.params(this.layer.weight)));
  }

  /** Tensors inside the quantizer parameters (TTQ scales, codebooks, INQ masks). */
  paramTensors(): Tensor[] {
    return [...tensorsIn(this.weightParams), ...tensorsIn(this.activationParams)];
  }

  /** Tensors trained with the model: TTQ's W^p, W^n, the k-means codebook, the input batch norm. */
  trainables(): Tensor[] {
    const out: Tensor[] = [];
    if (this.persistentWeightParams) for (const t of tensorsIn(this.weightParams)) if (t.requiresGrad) out.push(t);
    if (this.inputNorm) out.push(...this.inputNorm.parameters());
    return out;
  }

  /** Start observing inputs (mode 'calibrate': the layer computes in float and records its inputs). */
  startCalibration(method: CalibrationMethod, opts: { percentile?: number; means?: boolean } = {}): void {
    this.mode = 'calibrate';
    if (this.activation && isCalibrated(this.activation)) {
      const axis = this.activation instanceof AffineQuantizer ? this.activation.axis : null;
      this.observer = this.guard('activation', () => createObserver(method, axis, { percentile: opts.percentile }));
    }
    this.inputMeanSum = opts.means ? [] : null;
    this.inputMeanBatches = 0;
  }

  /** Turn the observed range into the activation parameters and go back to quantizing. */
  finishCalibration(): void {
    this.mode = 'quantize';
    const q = this.activation, o = this.observer;
    this.observer = null;
    if (!q || !o) return;
    const levels0 = magnitudeLevels(q, { min: [0], max: [1], axis: null });
    const range = this.guard('activation', () => o.range({
      levels: levels0,
      simulate: (t, r, values) => this.simulateActivation(r, values),
    }));
    this.setActivationRange(range);
  }

  setActivationRange(range: Range): void {
    this.activationRange = range;
    const q = this.activation;
    if (!q) return;
    if (q instanceof DorefaActivationQuantizer) this.activationScale = Math.max(rangeMaxAbs(range), 1e-12);
    else this.activationParams = this.guard('activation', () => paramsFromRange(q, range));
  }

  /** Quantize values with the activation quantizer set for a range (the mse observer's q_T). */
  private simulateActivation(r: Range, values: Float32Array): Float32Array {
    const q = this.evalActivation!;
    return tidy(() => noGrad(() => {
      const x = Tensor.from(values, [values.length]);
      if (q instanceof DorefaActivationQuantizer) {
        const s = Math.max(rangeMaxAbs(r), 1e-12);
        return ops.mulScalar(q.fakeQuantize(ops.mulScalar(x, 1 / s)), s).toFloat32Array();
      }
      const p = paramsFromRange(q, { ...r, axis: null, min: [Math.min(...r.min)], max: [Math.max(...r.max)] });
      return q.fakeQuantize(x, p as never).toFloat32Array();
    }));
  }

  /** QAT: track the input range with moving averages while training (starting from the calibrated range). */
  enableMovingAverage(): void {
    const q = this.activation;
    if (!q || !isCalibrated(q) || q instanceof DorefaActivationQuantizer) return;
    if (q instanceof DynamicFixedPointQuantizer && q.scaleUpdate === 'overflow') return;
    const axis = q instanceof AffineQuantizer ? q.axis : null;
    this.ema = new MovingAverageMinMaxObserver(axis);
    if (this.activationRange) this.ema.state = { min: this.activationRange.min, max: this.activationRange.max, batches: 1 };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Hooks

  private guard<T>(role: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw layerError(this.name, role, e);
    }
  }

  private weightHook(w: Tensor): Tensor {
    if (this.mode === 'float' || this.mode === 'calibrate') return w;
    if (this.layer.training) {
      this.invalidate();
      return this.guard('weight', () => this.quantizeWeight(w, this.persistentWeightParams ? this.weightParams : undefined));
    }
    if (!this.cachedWeight || this.cachedWeight.isDisposed) {
      this.cachedWeight = keep(noGrad(() => this.evalWeight(w)));
    }
    return this.cachedWeight;
  }

  /** The weights as evaluation uses them (deterministic: random draws restart from the layer's seed). */
  evalWeight(w: Tensor = this.layer.weight): Tensor {
    const q = this.evalWeightQuantizer!;
    seedsOf(q)?.reset(this.seed ^ 0x5eed);
    return this.guard('weight', () => tidy(() => this.quantizeWeight(w, this.weightParams, q)));
  }

  private quantizeWeight(w: Tensor, params: unknown, q: Quantizer = this.weight!): Tensor {
    const g = this.gain;
    if (g === 1) return q.fakeQuantize(w, params as never);
    const y = q.fakeQuantize(this.gainInside ? ops.mulScalar(w, 1 / g) : w, params as never);
    return ops.mulScalar(y, g);
  }

  /**
   * The accumulator step s_x s_w[c] per output channel (f32, as an exported DequantizeLinear of the int32 bias
   * computes it) of a layer that integer kernels run from codes: affine weights with zero point 0 and affine
   * per-tensor inputs. Null for any other layer.
   */
  integerGrid(): Float32Array | null {
    const wp = this.weightParams as AffineParams | undefined, ap = this.activationParams as AffineParams | undefined;
    if (this.inputNorm || this.gain !== 1 || this.xnorScale) return null;
    if (!(this.evalWeightQuantizer instanceof AffineQuantizer) || !(this.evalActivation instanceof AffineQuantizer)) return null;
    if (!wp?.scale || !(wp.zeroPoint ?? []).every((z) => z === 0) || ap?.scale?.length !== 1) return null;
    const C = this.layer.weight.shape[0];
    return Float32Array.from({ length: C }, (_, c) => Math.fround(ap.scale[0] * wp.scale[wp.scale.length === 1 ? 0 : c]));
  }

  /**
   * Evaluation of such a layer from its integer codes: acc = op(x codes - Z, W codes), exact in f32 (integers
   * below 2^24), then y = acc s_x s_w[c] + b, what lowbit's integer runtime and onnxruntime's QLinearConv
   * compute. An f32 convolution of the dequantized values rounds each partial sum and flips a code lying near
   * a rounding boundary of the next quantizer.
   */
  private codesHook(x: Tensor, op: (x: Tensor, w: Tensor) => Tensor): Tensor | null {
    if (this.mode !== 'quantize' || this.layer.training) return null;
    const steps = this.integerGrid();
    if (!steps) return null;
    const wp = this.weightParams as AffineParams, ap = this.activationParams as AffineParams;
    if (!this.cachedCodes || this.cachedCodes.w.isDisposed) {
      const C = steps.length, conv = this.layer instanceof Conv2d;
      const w = keep(noGrad(() => tidy(() => ops.round(ops.div(this.evalWeight(), perChannel(wp.scale, this.layer.weight.rank, 0))))));
      const g = keep(Tensor.from(steps, conv ? [1, C, 1, 1] : [1, C]));
      this.cachedCodes = { w, grid: g, dispose: () => { w.dispose(); g.dispose(); } };
    }
    const { w, grid } = this.cachedCodes;
    return this.guard('activation', () => {
      const xc = ops.addScalar(affineCodes(x, ap).codes, -ap.zeroPoint[0]);
      const y = ops.mul(op(xc, w), grid);
      const b = this.layer.bias;
      return b ? ops.add(y, ops.reshape(b, [...grid.shape])) : y;
    });
  }

  /** The layer's input as evaluation quantizes it (input norm, then the activation quantizer); no hooks needed. */
  quantizeInput(x: Tensor): Tensor {
    const saved = this.xnorScale;
    this.xnorScale = false; // XNOR's K belongs to a layer call (pendingScale); the runtime computes it itself
    try {
      return this.inputHook(x);
    } finally {
      this.xnorScale = saved;
    }
  }

  /**
   * The input's integer codes as evaluation quantizes it, straight from the quantizer (affine and fixed-point
   * activations without an input norm); null for the other datatypes.
   */
  inputCodes(x: Tensor): Tensor | null {
    const q = this.evalActivation;
    if (this.inputNorm || !(q instanceof AffineQuantizer || q instanceof FixedPointQuantizer || q instanceof DynamicFixedPointQuantizer)) return null;
    return this.guard('activation', () => q.quantize(x, this.activationParams as never).codes);
  }

  private inputHook(x: Tensor): Tensor {
    if (this.mode === 'float' || (this.mode === 'quantize' && !this.activation && !this.inputNorm)) return x;
    let h = x;
    if (this.inputNorm) {
      this.inputNorm.training = this.layer.training || this.mode === 'calibrate';
      if (this.mode === 'calibrate' && !this.layer.training) {
        // Running statistics as the plain average over the calibration batches.
        this.inputNorm.opts.momentum = 1 / (this.inputMeanBatches + 1);
      }
      h = this.inputNorm.forward(h);
      if (this.mode === 'calibrate' && !this.layer.training) this.inputNorm.opts.momentum = undefined;
    }
    if (this.mode === 'calibrate') {
      const seen = noGrad(() => h);
      this.observer?.observe(seen);
      if (this.inputMeanSum) {
        const m = channelMeansOf(seen);
        this.inputMeanSum = this.inputMeanSum.length ? this.inputMeanSum.map((s, i) => s + m[i]) : m;
      }
      this.inputMeanBatches++;
      return x;
    }
    const q = this.activation;
    if (this.xnorScale) this.pendingScale = this.inputScale(h);
    if (!q) return h;
    return this.guard('activation', () => {
      const training = this.layer.training;
      if (training && this.ema) {
        this.ema.observe(noGrad(() => h));
        this.activationParams = paramsFromRange(q, this.ema.range());
      }
      const aq = training ? q : this.evalActivation!;
      if (aq instanceof DorefaActivationQuantizer) {
        const s = this.activationScale;
        return s === 1 ? aq.fakeQuantize(h) : ops.mulScalar(aq.fakeQuantize(ops.mulScalar(h, 1 / s)), s);
      }
      if (q instanceof DynamicFixedPointQuantizer && q.scaleUpdate === 'overflow') {
        if (training) {
          const y = q.fakeQuantize(h);
          this.activationParams = { fracLength: q.scaler.fracLength };
          return y;
        }
      }
      return aq.fakeQuantize(h, this.activationParams as never);
    });
  }

  /** XNOR-Net's K for this layer's input: the box-filtered channel mean of |x| (conv), mean |x| per sample (linear). */
  private inputScale(h: Tensor): Tensor {
    const l = this.layer;
    if (l instanceof Conv2d) {
      const d = l.config.dilation;
      if (d !== undefined && d !== 1 && !(Array.isArray(d) && d[0] === 1 && d[1] === 1)) {
        throw new LowbitError(`layer ${this.name}: xnor input scaling needs an undilated convolution`);
      }
      return xnorInputScale(h, { kernel: l.kernel, stride: l.config.stride ?? 1, padding: l.config.padding ?? 0 });
    }
    return ops.mean(ops.abs(h), 1, true);
  }

  private outputHook(y: Tensor): Tensor {
    if (this.mode !== 'quantize') return y;
    let out = y;
    const k = this.pendingScale;
    if (k) {
      this.pendingScale = null;
      const b = this.layer.bias;
      if (b) {
        const bShape = this.layer instanceof Conv2d ? [1, b.size, 1, 1] : [1, b.size];
        const bb = ops.reshape(b, bShape);
        out = ops.add(ops.mul(ops.sub(out, bb), k), bb);
      } else {
        out = ops.mul(out, k);
      }
    }
    if (this.gradient && this.layer.training) out = this.gradient.fakeQuantize(out);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Serialization

  state(tensors: Map<string, Tensor>, prefix: string): FakeQuantState {
    if (this.inputNorm) for (const [k, t] of this.inputNorm.stateDict()) tensors.set(`${prefix}.inputNorm.${k}`, t);
    return {
      weight: this.scheme.weight?.spec ?? null,
      activation: this.scheme.activation?.spec ?? null,
      gradient: this.scheme.gradient?.spec ?? null,
      seed: this.seed,
      gain: this.gain,
      gainInside: this.gainInside,
      activationScale: this.activationScale,
      persistentWeightParams: this.persistentWeightParams,
      weightParams: encodeParams(this.weightParams, `${prefix}.weightParams`, tensors),
      activationParams: encodeParams(this.activationParams, `${prefix}.activationParams`, tensors),
      activationRange: this.activationRange,
      ema: this.ema ? this.ema.state : null,
      inputNorm: this.inputNorm !== null,
      xnorScale: this.xnorScale,
    };
  }

  /**
   * Restore a state written by state() (the layer's quantizers must come from the same scheme). With
   * `weightsQuantized`, the layer's weights already hold their quantized values and it only runs inference
   * (the runtime's float path): the weight and gradient quantizers are not checked, weight parameters not needed.
   */
  restore(s: FakeQuantState, tensors: Map<string, Tensor>, prefix: string, opts: { weightsQuantized?: boolean } = {}): void {
    const same = (a: string | null, b: string | null, role: string) => {
      if ((role === 'weights' || role === 'gradients') && opts.weightsQuantized) return;
      if (a !== b) throw new LowbitError(`quantized model: layer ${this.name} has ${role} ${b ?? 'fp32'} in the file but ${a ?? 'fp32'} from the spec`);
    };
    same(this.scheme.weight?.spec ?? null, s.weight, 'weights');
    same(this.scheme.activation?.spec ?? null, s.activation, 'activations');
    same(this.scheme.gradient?.spec ?? null, s.gradient, 'gradients');
    this.gain = s.gain;
    this.gainInside = s.gainInside;
    this.activationScale = s.activationScale;
    this.persistentWeightParams = s.persistentWeightParams;
    this.weightParams = opts.weightsQuantized ? undefined : decodeParams(s.weightParams, tensors);
    for (const t of tensorsIn(this.weightParams)) keep(t);
    this.activationParams = decodeParams(s.activationParams, tensors);
    this.activationRange = s.activationRange;
    if (s.ema) {
      this.ema = new MovingAverageMinMaxObserver(s.ema.min.length > 1 ? 1 : null);
      this.ema.state = s.ema;
    }
    this.xnorScale = s.xnorScale;
    if (s.inputNorm) {
      if (!this.inputNorm) this.inputNorm = new BatchNorm(this.layer instanceof Conv2d ? this.layer.inChannels : this.layer.inFeatures);
      const own = this.inputNorm.stateDict();
      for (const [k, t] of own) {
        const src = tensors.get(`${prefix}.inputNorm.${k}`);
        if (!src) throw new LowbitError(`quantized model: tensor ${prefix}.inputNorm.${k} is missing from the file`);
        t.assign(src);
      }
    } else if (this.inputNorm) {
      this.inputNorm.dispose();
      this.inputNorm = null;
    }
    this.invalidate();
  }

  /** Free the cached weights, the input batch norm and tensors of the parameters (not the layer's own). */
  dispose(): void {
    this.remove();
    for (const t of tensorsIn(this.weightParams)) t.dispose();
    this.inputNorm?.dispose();
  }
}

function channelMeansOf(x: Tensor): number[] {
  return tidy(() => Array.from(ops.mean(x, x.rank === 4 ? [0, 2, 3] : [0]).toFloat32Array()));
}

function absStat(w: Tensor, kind: 'mean' | 'max'): number {
  return tidy(() => noGrad(() => (kind === 'mean' ? ops.mean(ops.abs(w)) : ops.max(ops.abs(w))).item()));
}

/** An error of a layer's quantizer as a LowbitError that names the layer and the role. */
export function layerError(layer: string, role: string, e: unknown): Error {
  if (e instanceof LowbitError) {
    const msg = e.message.replace(/^lowbit: /, '');
    if (msg.startsWith(`layer ${layer}`)) return e;
    return new LowbitError(`layer ${layer} (${role}): ${msg}`, e.exitCode);
  }
  if (e instanceof RangeError || e instanceof TypeError) {
    return new LowbitError(`layer ${layer} (${role}): ${e.message.replace(/^lowbit: /, '')}`);
  }
  return e as Error;
}

