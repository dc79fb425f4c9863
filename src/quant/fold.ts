// Batch-norm folding: a BatchNorm that reads a conv's (or linear layer's) output is merged into that layer,
// as every integer-inference pipeline does before quantizing (Jacob et al., CVPR 2018, sec. 3.2;
// Krishnamoorthi 2018, sec. 2.4). In evaluation mode
//   BN(W x + b) = s (W x + b - mu) + beta,   s = gamma / sqrt(var + eps)   (per output channel)
//              = (s W) x + (s (b - mu) + beta)
// so the folded layer has W' = s W (row c of W scaled by s_c) and b' = s (b - mu) + beta, and the batch norm
// becomes the identity (gamma 1, beta 0, mean 0, var 1 - eps: exactly y = x in evaluation mode).
//
// Which batch norm follows which layer is found by tracing a forward pass (the BN's input is the very tensor
// the layer returned); the result is then checked numerically against the unfolded model. A folded model is
// for evaluation: in training mode its batch norms would normalize again.

import * as ops from '../autograd/index.js';
import { BatchNorm, type Module } from '../nn/index.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { LowbitError } from '../errors.js';
import { isQuantizable, traceModel, type ModelTrace, type QuantizableLayer } from './graph.js';

export interface FoldPair {
  /** The conv or linear layer that absorbs the batch norm. */
  layer: string;
  batchNorm: string;
}

/** The (layer, batch norm) pairs of a traced model: each BN whose input is a conv/linear output. */
export function findFoldPairs(trace: ModelTrace): FoldPair[] {
  const pairs: FoldPair[] = [];
  const used = new Set<string>();
  for (const r of trace.records) {
    if (!(r.module instanceof BatchNorm) || r.inputFrom === null) continue;
    const src = trace.records[r.inputFrom];
    if (!isQuantizable(src.module) || used.has(src.name)) continue;
    used.add(src.name);
    pairs.push({ layer: src.name, batchNorm: r.name });
  }
  return pairs;
}

function moduleByName(model: Module, name: string): Module {
  const m = model.namedModules().find(([n]) => n === name)?.[1];
  if (!m) throw new LowbitError(`batch-norm folding: the model has no module named ${name}`);
  return m;
}

/** Give the layers of the pairs a bias (the folded bias lives there). Used again when a folded model is loaded. */
export function prepareFoldedStructure(model: Module, pairs: readonly FoldPair[]): void {
  for (const p of pairs) {
    const m = moduleByName(model, p.layer);
    if (!isQuantizable(m)) throw new LowbitError(`batch-norm folding: ${p.layer} is not a conv or linear layer`);
    m.ensureBias();
  }
}

/** Fold one batch norm into its layer, in place. */
export function foldInto(layer: QuantizableLayer, bn: BatchNorm): void {
  const c = bn.channels;
  const out = layer.weight.shape[0];
  if (out !== c) throw new LowbitError(`batch-norm folding: ${bn.describe()} has ${c} channels, ${layer.describe()} produces ${out}`);
  const eps = bn.opts.eps ?? 1e-5;
  const gamma = bn.gamma.toFloat32Array(), beta = bn.beta.toFloat32Array();
  const mean = bn.runningMean.toFloat32Array(), variance = bn.runningVar.toFloat32Array();
  const scale = new Float32Array(c);
  for (let i = 0; i < c; i++) scale[i] = gamma[i] / Math.sqrt(variance[i] + eps);
  const bias = layer.ensureBias();
  const b = bias.toFloat32Array();
  const folded = new Float32Array(c);
  for (let i = 0; i < c; i++) folded[i] = scale[i] * (b[i] - mean[i]) + beta[i];
  ops.noGrad(() => tidy(() => {
    const shape = layer.weight.shape.map((d, i) => (i === 0 ? d : 1));
    layer.weight.assign(ops.mul(layer.weight, Tensor.from(scale, shape)));
    bias.assign(Tensor.from(folded, [c]));
    // The identity: scale 1 / sqrt((1 - eps) + eps) rounds to exactly 1 in f32, shift 0.
    bn.gamma.assign(Tensor.ones([c]));
    bn.beta.assign(Tensor.zeros([c]));
    bn.runningMean.assign(Tensor.zeros([c]));
    bn.runningVar.assign(Tensor.full([c], 1 - eps));
  }));
}

/** Largest |a - b| relative to the largest |a|. */
export function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

export interface FoldResult {
  pairs: FoldPair[];
  /** Relative difference of the outputs before and after folding on the sample batch. */
  difference: number;
}

/**
 * Fold every batch norm that follows a conv/linear layer into it, in place (pass a copy to keep the
 * original), and check that the model's evaluation output on `sample` is unchanged within `tolerance`
 * (relative to the largest output).
 */
export function foldBatchNorm(model: Module, sample: Tensor, opts: { tolerance?: number; trace?: ModelTrace } = {}): FoldResult {
  const trace = opts.trace ?? traceModel(model, sample);
  const pairs = findFoldPairs(trace);
  if (pairs.length === 0) return { pairs, difference: 0 };
  const wasTraining = model.training;
  model.eval();
  const before = ops.noGrad(() => tidy(() => model.forward(sample).toFloat32Array()));
  for (const p of pairs) foldInto(moduleByName(model, p.layer) as QuantizableLayer, moduleByName(model, p.batchNorm) as BatchNorm);
  const after = ops.noGrad(() => tidy(() => model.forward(sample).toFloat32Array()));
  model.train(wasTraining);
  const difference = relativeDifference(before, after);
  const tolerance = opts.tolerance ?? 1e-4;
  if (!(difference <= tolerance)) {
    throw new LowbitError(
      `batch-norm folding changed the model's output by ${difference.toExponential(2)} (relative, tolerance ${tolerance}); ` +
        `a batch norm's input may also feed another op (pairs: ${pairs.map((p) => `${p.layer}+${p.batchNorm}`).join(', ')})`,
    );
  }
  return { pairs, difference };
}
