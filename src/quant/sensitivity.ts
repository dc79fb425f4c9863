// Per-layer analysis of a quantized model against its float self: which layer causes the accuracy drop.
//
//   layerDiff          for every conv/linear layer, on a batch of real data:
//                        weight SQNR      10 log10(sum w^2 / sum (w - q(w))^2)          (the datatype alone)
//                        activation SQNR  10 log10(sum x^2 / sum (x - q_a(x))^2)       (x: the layer's input in the
//                                                                                      quantized model)
//                        output SQNR      10 log10(sum y_f^2 / sum (y_f - y_q)^2)      (y_f: the layer's output in
//                                         and relative L2 ||y_f - y_q|| / ||y_f||      the float model, y_q in the
//                                                                                      quantized one: every error
//                                                                                      accumulated up to this layer)
//                      The float reference is the same model with its quantizers switched off (batch norms are
//                      folded identically), so layer outputs line up name by name.
//   layerSensitivity   each layer alone quantized (others float) by PTQ -> test accuracy and its delta vs float
//   weightNoiseTable   each layer's weights alone rounded to b bits (others float) -> the network output's
//                      noise-to-signal ratio sum (z_f - z_q)^2 / sum z_f^2 on a batch; what the mixed-precision
//                      allocators (lin-allocation.ts, mixed-precision.ts) spend bits against.

import { noGrad } from '../autograd/graph.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/index.js';
import type { Batch } from '../train/trainer.js';
import { evaluate } from '../train/trainer.js';
import { foldBatchNorm } from './fold.js';
import { traceModel, quantizableLayers, type LayerInfo } from './graph.js';
import { quantizePostTraining } from './ptq.js';
import { cloneModel, disposeQuantized, type ModelSource, type QuantizedModel } from './quantized.js';
import { createQuantizer, formatScheme } from './spec.js';
import type { CalibrationMethod } from './observers.js';
import { layerSqnr, sqnrDb } from './weight-stats.js';

/** Running sums of a signal and the error against it. */
class ErrorSums {
  signal = 0;
  noise = 0;
  add(ref: ArrayLike<number>, other: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) {
      this.signal += ref[i] * ref[i];
      const d = ref[i] - other[i];
      this.noise += d * d;
    }
  }
  get sqnrDb(): number | null {
    return this.noise === 0 ? null : round(10 * Math.log10(this.signal / this.noise), 3);
  }
  get relativeL2(): number {
    return this.signal === 0 ? 0 : round(Math.sqrt(this.noise / this.signal), 6);
  }
}

export interface LayerDiff {
  layer: string;
  kind: 'conv' | 'linear';
  params: number;
  /** The layer's datatypes ("w=int4,a=int8"; fp32 for layers the spec leaves float). */
  scheme: string;
  /** null: not quantized, or no noise. */
  weight_sqnr_db: number | null;
  activation_sqnr_db: number | null;
  output_sqnr_db: number | null;
  output_rel_l2: number;
}

export interface ModelDiff {
  samples: number;
  layers: LayerDiff[];
  /** The network's output (logits). */
  logits_sqnr_db: number | null;
  /** Fraction of images whose top-1 class is the same in both models. */
  top1_agreement: number;
}

/** Call `visit(name, input, output)` for every call of the named modules during `run`. */
function watchLayers(model: Module, names: ReadonlySet<string>, visit: (name: string, x: Tensor, y: Tensor) => void, run: () => void): void {
  const patched: Module[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!names.has(name)) continue;
    const original = m.forward;
    Object.defineProperty(m, 'forward', {
      value: (x: Tensor) => {
        const y = original.call(m, x);
        visit(name, x, y);
        return y;
      },
      configurable: true, writable: true,
    });
    patched.push(m);
  }
  try {
    run();
  } finally {
    for (const m of patched) delete (m as { forward?: unknown }).forward;
  }
}

/** The float-vs-quantized diff of every conv/linear layer of q on `batches` (their tensors are disposed here). */
export function layerDiff(q: QuantizedModel, batches: Iterable<Batch>): ModelDiff {
  const info = q.info;
  const names = new Set(info.map((l) => l.name));
  const byName = new Map(q.layers.map((l) => [l.name, l]));
  const out = new Map(info.map((l) => [l.name, new ErrorSums()]));
  const act = new Map(info.map((l) => [l.name, new ErrorSums()]));
  const logits = new ErrorSums();
  let samples = 0, agree = 0;
  const modes = q.layers.map((l) => l.mode);
  q.model.eval();
  try {
    for (const b of batches) {
      try {
        noGrad(() => tidy(() => {
          // the float reference: the same (folded) model with every quantizer switched off
          const floatOut = new Map<string, Float32Array>();
          for (const l of q.layers) l.mode = 'float';
          let zf!: Float32Array, zq!: Float32Array;
          watchLayers(q.model, names, (name, _x, y) => { if (!floatOut.has(name)) floatOut.set(name, y.toFloat32Array()); }, () => {
            zf = q.model.forward(b.x).toFloat32Array();
          });
          q.layers.forEach((l, i) => { l.mode = modes[i] === 'float' ? 'quantize' : modes[i]; });
          const seen = new Set<string>();
          watchLayers(q.model, names, (name, x, y) => {
            if (seen.has(name)) return; // a module called twice: its first call lines up with the float run's
            seen.add(name);
            out.get(name)!.add(floatOut.get(name)!, y.toFloat32Array());
            const fq = byName.get(name);
            if (fq?.activation) {
              const ref = fq.inputNorm ? fq.inputNorm.forward(x) : x;
              act.get(name)!.add(ref.toFloat32Array(), fq.quantizeInput(x).toFloat32Array());
            }
          }, () => {
            zq = q.model.forward(b.x).toFloat32Array();
          });
          logits.add(zf, zq);
          const n = b.x.shape[0], classes = zf.length / n;
          for (let i = 0; i < n; i++) if (argmax(zf, i * classes, classes) === argmax(zq, i * classes, classes)) agree++;
          samples += n;
        }));
      } finally {
        b.x.dispose();
        b.y.dispose();
      }
    }
  } finally {
    q.layers.forEach((l, i) => { l.mode = modes[i]; });
  }
  const wSqnr = new Map(layerSqnr(q.layers).map((s) => [s.name, s.sqnr_db]));
  const none = { weight: null, activation: null, gradient: null };
  return {
    samples,
    layers: info.map((l) => ({
      layer: l.name, kind: l.kind, params: l.params, scheme: formatScheme(byName.get(l.name)?.scheme ?? none),
      weight_sqnr_db: wSqnr.get(l.name) ?? null,
      activation_sqnr_db: byName.get(l.name)?.activation ? act.get(l.name)!.sqnrDb : null,
      output_sqnr_db: out.get(l.name)!.sqnrDb, output_rel_l2: out.get(l.name)!.relativeL2,
    })),
    logits_sqnr_db: logits.sqnrDb,
    top1_agreement: samples ? round(agree / samples, 6) : 0,
  };
}

function argmax(v: Float32Array, start: number, n: number): number {
  let best = 0;
  for (let k = 1; k < n; k++) if (v[start + k] > v[start + best]) best = k;
  return best;
}

// ---------------------------------------------------------------------------------------------------------
// Accuracy sensitivity: one layer at a time

export interface LayerSensitivity {
  layer: string;
  /** The spec that ran (the layer's override alone). */
  spec: string;
  accuracy: number;
  /** accuracy - float accuracy. */
  delta: number;
}

export interface SensitivityResult {
  /** The datatype given to one layer at a time (int4, or role assignments such as w=int4). */
  datatype: string;
  float_accuracy: number;
  samples: number;
  layers: LayerSensitivity[];
}

/** "conv1=int4" for a datatype, "conv1:w=int4" for role assignments. */
export function singleLayerSpec(layer: string, datatype: string): string {
  return datatype.includes('=') ? `${layer}:${datatype}` : `${layer}=${datatype}`;
}

export interface SensitivityOptions {
  /** Datatype of the layer under test: 'int4', 'w=int4', 'w=int3,a=int8', ... */
  datatype: string;
  calibration: () => Iterable<Batch>;
  test: () => Iterable<Batch>;
  method?: CalibrationMethod;
  seed?: number;
  /** Called after each layer. */
  log?: (line: string) => void;
}

/** Each conv/linear layer alone quantized by PTQ, the others float: test accuracy and delta vs float. */
export function layerSensitivity(source: ModelSource, info: readonly LayerInfo[], o: SensitivityOptions): SensitivityResult {
  const fp = evaluate(source.model, o.test());
  const layers: LayerSensitivity[] = [];
  for (const l of info) {
    const spec = singleLayerSpec(l.name, o.datatype);
    const q = quantizePostTraining(source, { spec, calibration: o.calibration(), method: o.method ?? 'minmax', seed: o.seed, firstLast: 'quantize' });
    try {
      const r = evaluate(q.model, o.test());
      layers.push({ layer: l.name, spec, accuracy: r.accuracy, delta: round(r.accuracy - fp.accuracy, 6) });
      o.log?.(`sensitivity ${spec}: ${(100 * r.accuracy).toFixed(2)}% (${r.accuracy >= fp.accuracy ? '+' : ''}${(100 * (r.accuracy - fp.accuracy)).toFixed(2)})`);
    } finally {
      disposeQuantized(q);
    }
  }
  return { datatype: o.datatype, float_accuracy: fp.accuracy, samples: fp.samples, layers };
}

// ---------------------------------------------------------------------------------------------------------
// Weight-noise table: what the allocators spend bits against

export interface WeightNoiseTable {
  /** The layers (execution order), with their parameter counts. */
  layers: { name: string; params: number }[];
  bits: number[];
  /** noise[i][k]: output noise-to-signal ratio with layer i's weights alone at bits[k] (others float). */
  noise: number[][];
  /** weightSqnr[i][k]: SQNR (dB) of layer i's weights at bits[k]. */
  weightSqnr: number[][];
}

/** The weight datatype of `bits` bits that the allocators use. */
export function weightDatatype(bits: number, perChannel = false): string {
  return `int${bits}${perChannel ? ':per-channel' : ''}`;
}

/**
 * Round each layer's weights alone to each bit width (symmetric uniform integers, after batch-norm folding) and
 * measure the network output's noise-to-signal ratio on x. The source model is not changed.
 */
export function weightNoiseTable(source: ModelSource, x: Tensor, bits: readonly number[], opts: { perChannel?: boolean } = {}): WeightNoiseTable {
  const model = cloneModel(source);
  try {
    model.eval();
    foldBatchNorm(model, x);
    const info = quantizableLayers(traceModel(model, x));
    const forward = () => noGrad(() => tidy(() => model.forward(x).toFloat32Array()));
    const ref = forward();
    const noise: number[][] = [], weightSqnr: number[][] = [];
    for (const l of info) {
      const w = l.module.weight;
      const original = w.toFloat32Array();
      const rowN: number[] = [], rowS: number[] = [];
      try {
        for (const b of bits) {
          const wq = noGrad(() => tidy(() => createQuantizer(weightDatatype(b, opts.perChannel), 'weight')!.fakeQuantize(w).toFloat32Array()));
          rowS.push(sqnrDb(original, wq) ?? Infinity);
          tidy(() => { w.assign(Tensor.from(wq, w.shape)); });
          const z = forward();
          const e = new ErrorSums();
          e.add(ref, z);
          rowN.push(e.signal > 0 ? e.noise / e.signal : 0);
          tidy(() => { w.assign(Tensor.from(original, w.shape)); });
        }
      } finally {
        tidy(() => { w.assign(Tensor.from(original, w.shape)); });
      }
      noise.push(rowN);
      weightSqnr.push(rowS.map((s) => round(s, 3)));
    }
    return { layers: info.map((l) => ({ name: l.name, params: l.params })), bits: [...bits], noise, weightSqnr };
  } finally {
    model.dispose();
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
