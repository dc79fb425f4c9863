// lowbit's integer and bitwise runtime: compile a quantized (or float) model into a Plan and run it.
//
//   const plan = compileModel(quantized.model, quantized.layers, [1, 1, 28, 28]);
//   const logits = plan.run(images);        // [N, classes]
//   plan.summary();                          // which kernel runs each layer, and why
//   plan.dispose();

import type { Module } from '../nn/index.js';
import { Conv2d, Linear } from '../nn/index.js';
import type { FakeQuantLayer } from '../quant/fakequant.js';
import type { QuantizedModel } from '../quant/quantized.js';
import { layerSpecOf, type LayerSpec } from './layers.js';
import { Plan, normsOf, type PlanOptions } from './plan.js';
import { traceGraph } from './trace.js';
import { saveRuntimeModel, sizeReport } from './file.js';

export { Plan, type PlanLayerSummary, type PlanOptions } from './plan.js';
export type { LayerSpec, RuntimeLayer, KernelFamily } from './layers.js';

/** The conv/linear layer descriptions and the graph of a model with (optionally) its fake quantizers. */
export function describeModel(model: Module, fakeQuant: FakeQuantLayer[], inputShape: number[]) {
  const graph = traceGraph(model, inputShape);
  const byModule = new Map(fakeQuant.map((l) => [l.layer as Module, l]));
  const specs = new Map<string, LayerSpec>();
  for (const n of graph.nodes) {
    if ((n.op === 'conv' || n.op === 'linear') && n.module && (n.module instanceof Conv2d || n.module instanceof Linear)) {
      specs.set(n.name!, layerSpecOf(n.name!, n.module, byModule.get(n.module) ?? null));
    }
  }
  return { graph, specs };
}

/** Compile a model (float, or with fake quantizers installed: PTQ/QAT output) for the runtime. */
export function compileModel(model: Module, fakeQuant: FakeQuantLayer[], inputShape: number[], opts: PlanOptions = {}): Plan {
  const { graph, specs } = describeModel(model, fakeQuant, inputShape);
  return Plan.compile(graph, specs, normsOf(model), [], opts);
}

/** Compile a quantized model (what `lowbit quantize` writes, loaded with loadQuantizedModel). */
export function compileQuantized(q: QuantizedModel, opts: PlanOptions = {}): Plan {
  return compileModel(q.model, q.layers, [1, q.config.inChannels, q.config.inputSize, q.config.inputSize], opts);
}

/** Write a quantized model as a packed runtime file; returns its size and the theoretical size. */
export function exportPacked(q: QuantizedModel, path: string): { bytes: number; theoreticalBytes: number; packedParams: number; floatParams: number } {
  const { graph, specs } = describeModel(q.model, q.layers, [1, q.config.inChannels, q.config.inputSize, q.config.inputSize]);
  const norms = normsOf(q.model);
  try {
    const { preprocess, classes, dataset } = q.sourceMetadata;
    const metadata = { model: q.name, dataset, classes, preprocess, spec: q.spec.text, effectiveSpec: q.effective.text, mode: q.mode };
    const bytes = saveRuntimeModel(path, { graph, specs, norms }, metadata);
    const used = new Set(graph.nodes.filter((n) => n.op === 'batchNorm').map((n) => n.name!));
    return { bytes, ...sizeReport(specs, norms, used) };
  } finally {
    for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
  }
}

export { loadRuntimePlan, isRuntimeFile, saveRuntimeModel, decodeRuntimeModel } from './file.js';
