// Post-training quantization: a trained float model in, a fake-quantized model out, no training.
//
//   1. copy the model and fold every batch norm into the conv/linear layer before it (fold.ts), checked
//      numerically against the original
//   2. weights: the quantizer's parameters from the folded weights (per tensor or per output channel, as the
//      spec says: int8 vs int8:per-channel)
//   3. activations (each conv/linear layer's input): run N calibration samples through the float model and
//      let an observer choose each input's range (observers.ts: minmax, moving-average, percentile, entropy,
//      mse); the activation quantizer's parameters come from that range
//   4. bias correction (Nagel, van Baalen, Blankevoort & Welling, "Data-Free Quantization Through Weight
//      Equalization and Bias Correction", ICCV 2019, sec. 4.2): quantizing W shifts each output's mean by
//      E[(q(W) - W) x] = (q(W) - W) E[x]; subtracting it from the bias removes that bias. E[x] per input
//      channel is measured during calibration (zero padding at the borders is neglected).
//      The first layer's input (the normalized image) is always calibrated by min-max.
//   5. the bias of a layer with affine weights and inputs goes on the int32 grid of step s_x s_w[c] (Jacob et
//      al. 2018, sec. 2.4: the bias is an int32 of scale S1 S2), so that the simulation, lowbit's runtime
//      and an exported QDQ model (whose int32 bias onnxruntime fuses into QLinearConv) add the same bias
//   6. the result evaluates with fake quantizers: the f32 simulation of the integer arithmetic.

import * as ops from '../autograd/index.js';
import { noGrad } from '../autograd/graph.js';
import { Conv2d } from '../nn/index.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { LowbitError, UsageError } from '../errors.js';
import type { Batch } from '../train/trainer.js';
import { foldBatchNorm, type FoldPair } from './fold.js';
import { traceModel } from './graph.js';
import { FakeQuantLayer, layerError } from './fakequant.js';
import type { CalibrationMethod } from './observers.js';
import type { FirstLastPolicy } from './conventions.js';
import { attachQuantizers, checkInputShape, cloneModel, type ModelSource, type QuantizedModel } from './quantized.js';
import type { QuantSpec } from './spec.js';

export interface PtqOptions {
  spec: string | QuantSpec;
  /** Calibration batches (normalized like the training data); their tensors are disposed here. */
  calibration: Iterable<Batch>;
  /** Default 'minmax'. */
  method?: CalibrationMethod;
  /** For method 'percentile' (default 99.99). */
  percentile?: number;
  /** Default true. */
  biasCorrection?: boolean;
  /** Default true. */
  foldBatchNorm?: boolean;
  firstLast?: FirstLastPolicy;
  seed?: number;
  log?: (line: string) => void;
}

/** Quantize a trained model after training. The source model is not changed. */
export function quantizePostTraining(src: ModelSource, opts: PtqOptions): QuantizedModel {
  const method = opts.method ?? 'minmax';
  const it = opts.calibration[Symbol.iterator]();
  const first = it.next();
  if (first.done) throw new UsageError('calibration needs at least one sample (--calib-samples must be >= 1)');
  const sample = first.value;
  const model = cloneModel(src);
  let layers: FakeQuantLayer[] = [];
  try {
    checkInputShape(src, sample.x, 'the calibration data');
    model.eval();
    let trace = traceModel(model, sample.x);
    let folded: FoldPair[] = [];
    if (opts.foldBatchNorm ?? true) {
      folded = foldBatchNorm(model, sample.x, { trace }).pairs;
      if (folded.length) trace = traceModel(model, sample.x);
    }
    const attached = attachQuantizers(trace, opts.spec, { seed: opts.seed, firstLast: opts.firstLast });
    layers = attached.layers;
    const addedBias: string[] = [];
    // Weights: parameters from the folded weights.
    for (const l of layers) l.freezeWeightParams();
    // Activations: observe N samples through the float model.
    const correct = opts.biasCorrection ?? true;
    // The network's input (normalized pixels) has a known range that 8-bit codes cover exactly; clipping it
    // (KL often cuts the bright pixels off) only loses information: it is always calibrated by min-max.
    const inputLayer = trace.layers[0]?.name;
    for (const l of layers) {
      l.startCalibration(l.name === inputLayer ? 'minmax' : method, { percentile: opts.percentile, means: correct && !!l.weight && !l.inputNorm });
      l.install();
    }
    let samples = 0;
    const observe = (b: Batch) => {
      try {
        checkInputShape(src, b.x, 'the calibration data');
        noGrad(() => tidy(() => { model.forward(b.x); }));
        samples += b.x.shape[0];
      } finally {
        b.x.dispose();
        b.y.dispose();
      }
    };
    observe(sample);
    for (let r = it.next(); !r.done; r = it.next()) observe(r.value);
    for (const l of layers) l.finishCalibration();
    if (correct) {
      for (const l of layers) {
        if (!l.weight || !l.inputMeanSum || l.inputMeanBatches === 0) continue;
        if (!l.layer.bias) addedBias.push(l.name);
        correctBias(l);
      }
    }
    for (const l of layers) snapBiasToInt32Grid(l);
    opts.log?.(`PTQ ${attached.effective.text}: ${layers.length} layers quantized, ${folded.length} batch norms folded, ${samples} calibration samples (${method})`);
    return {
      name: src.name, config: src.config, model, spec: attached.spec, effective: attached.effective, mode: 'ptq',
      layers, info: trace.layers, folded, addedBias,
      details: { seed: opts.seed ?? 0, method, percentile: method === 'percentile' ? opts.percentile ?? 99.99 : undefined, calibrationSamples: samples, biasCorrection: correct },
      sourceMetadata: src.metadata ?? {},
    };
  } catch (e) {
    for (const l of layers) l.dispose();
    model.dispose();
    sample.x.dispose();
    sample.y.dispose();
    throw e;
  }
}

/** b[c] <- round(b[c] / (s_x s_w[c])) s_x s_w[c] for a layer that integer kernels run (FakeQuantLayer.integerGrid). */
export function snapBiasToInt32Grid(l: FakeQuantLayer): void {
  const b = l.layer.bias, step = l.integerGrid();
  if (!b || !step) return;
  const v = b.toFloat32Array();
  if (step.some((s) => !(s > 0)) || v.some((bc, c) => !(Math.abs(bc / step[c]) < 2 ** 31 - 1))) return;
  b.view().set(v.map((bc, c) => Math.round(bc / step[c]) * step[c]));
  l.invalidate();
}

/** b <- b - (q(W) - W) E[x] (per output channel; grouped convolutions sum within their group). */
export function correctBias(l: FakeQuantLayer): void {
  const layer = l.layer;
  const means = l.inputMeanSum!.map((s) => s / l.inputMeanBatches);
  try {
    noGrad(() => tidy(() => {
      const w = layer.weight;
      const dw = ops.sub(l.evalWeight(), w);
      let shift: Tensor;
      if (layer instanceof Conv2d) {
        const groups = layer.config.groups ?? 1;
        const out = layer.outChannels, inPer = layer.inChannels / groups;
        const summed = ops.reshape(ops.sum(dw, [2, 3]), [groups, out / groups, inPer]);
        const ex = Tensor.from(Float32Array.from(means), [groups, inPer, 1]);
        shift = ops.reshape(ops.matmul(summed, ex), [out]);
      } else {
        shift = ops.reshape(ops.matmul(dw, Tensor.from(Float32Array.from(means), [means.length, 1])), [layer.outFeatures]);
      }
      const b = layer.ensureBias();
      b.assign(ops.sub(b, shift));
    }));
  } catch (e) {
    throw layerError(l.name, 'bias correction', e instanceof LowbitError ? e : new LowbitError(String((e as Error).message)));
  }
  l.invalidate();
}
