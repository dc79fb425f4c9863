// What a quantization pass needs to know about a model, found by running it once: the conv and linear
// layers in the order they execute (the first and last layer, which several papers keep at higher
// precision), their input and output shapes (MACs, activation traffic), and which batch norm reads which
// layer's output (batch-norm folding).
//
// The model is traced by wrapping each module's forward for one call; nothing about the model's structure is
// assumed beyond it being a tree of Modules.

import { Conv2d, Linear, type Module } from '../nn/index.js';
import { noGrad } from '../autograd/graph.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { LowbitError } from '../errors.js';

export type QuantizableLayer = Conv2d | Linear;

export function isQuantizable(m: Module): m is QuantizableLayer {
  return m instanceof Conv2d || m instanceof Linear;
}

/** One module call seen while tracing. */
export interface TraceRecord {
  name: string;
  module: Module;
  /** Position in execution order (calls of leaf and container modules alike). */
  order: number;
  inputShape: number[];
  outputShape: number[];
  /** Which earlier record produced this call's input tensor (the same tensor object), if any. */
  inputFrom: number | null;
}

/** A conv or linear layer with its shapes, in execution order. */
export interface LayerInfo {
  name: string;
  module: QuantizableLayer;
  kind: 'conv' | 'linear';
  inputShape: number[];
  outputShape: number[];
  /** Multiply-accumulates per image. */
  macs: number;
  /** Weight elements (without bias). */
  params: number;
  /** Output channels (conv) or features (linear). */
  outChannels: number;
  /** Inputs summed into one output (the accumulator's length). */
  fanIn: number;
}

export interface ModelTrace {
  records: TraceRecord[];
  /** Conv and linear layers in execution order (each once: the first call). */
  layers: LayerInfo[];
}

/** Run model.forward(x) once (eval mode, no gradients) and record every module call. */
export function traceModel(model: Module, x: Tensor): ModelTrace {
  const records: TraceRecord[] = [];
  const producedBy = new Map<Tensor, number>();
  const patched: Module[] = [];
  const wasTraining = model.training;
  for (const [name, m] of model.namedModules()) {
    const original = m.forward;
    const wrapped = (input: Tensor): Tensor => {
      const rec: TraceRecord = { name, module: m, order: records.length, inputShape: [...input.shape], outputShape: [], inputFrom: producedBy.get(input) ?? null };
      records.push(rec);
      const y = original.call(m, input);
      rec.outputShape = [...y.shape];
      if (!producedBy.has(y)) producedBy.set(y, rec.order); // the innermost module that made it
      return y;
    };
    Object.defineProperty(m, 'forward', { value: wrapped, configurable: true, writable: true });
    patched.push(m);
  }
  try {
    model.eval();
    noGrad(() => tidy(() => { model.forward(x); }));
  } finally {
    for (const m of patched) delete (m as { forward?: unknown }).forward;
    model.train(wasTraining);
  }
  const seen = new Set<Module>();
  const layers: LayerInfo[] = [];
  for (const r of records) {
    if (!isQuantizable(r.module) || seen.has(r.module)) continue;
    seen.add(r.module);
    const m = r.module;
    const outPerImage = r.outputShape.slice(1).reduce((p, d) => p * d, 1);
    if (m instanceof Conv2d) {
      const groups = m.config.groups ?? 1;
      const fanIn = (m.inChannels / groups) * m.kernel[0] * m.kernel[1];
      layers.push({ name: r.name, module: m, kind: 'conv', inputShape: r.inputShape, outputShape: r.outputShape, macs: outPerImage * fanIn, params: m.weight.size, outChannels: m.outChannels, fanIn });
    } else {
      const rows = r.inputShape.slice(1, -1).reduce((p, d) => p * d, 1);
      layers.push({ name: r.name, module: m, kind: 'linear', inputShape: r.inputShape, outputShape: r.outputShape, macs: rows * m.inFeatures * m.outFeatures, params: m.weight.size, outChannels: m.outFeatures, fanIn: m.inFeatures });
    }
  }
  return { records, layers };
}

/** The conv and linear layers of a traced model, or a clear error when there are none. */
export function quantizableLayers(trace: ModelTrace, what = 'the model'): LayerInfo[] {
  if (trace.layers.length === 0) {
    throw new LowbitError(`${what} has no quantizable layer (Conv2d or Linear); lowbit quantizes the weights and inputs of conv and linear layers`);
  }
  return trace.layers;
}
