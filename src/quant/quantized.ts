// A quantized model: a copy of the float model with fake quantizers installed on its conv and linear layers,
// and everything needed to describe, save and reload it. PTQ (ptq.ts) and QAT (qat.ts) both produce one.

import type { Module } from '../nn/index.js';
import { LowbitError } from '../errors.js';
import { GraphModule } from '../nn/index.js';
import { Random } from '../tensor/random.js';
import { buildModel, type ModelConfig } from '../zoo/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { FakeQuantLayer, type FakeQuantOptions } from './fakequant.js';
import type { FoldPair } from './fold.js';
import { quantizableLayers, type LayerInfo, type ModelTrace } from './graph.js';
import { effectiveSpec, type FirstLastPolicy } from './conventions.js';
import { parseSpec, type QuantSpec } from './spec.js';

/** A float model and what rebuilds it (a zoo name and config): `loadModel()` returns one. */
export interface ModelSource {
  name: string;
  config: ModelConfig;
  model: Module;
  metadata?: Record<string, unknown>;
}

export interface QuantizedModel {
  name: string;
  config: ModelConfig;
  model: Module;
  /** The spec as given. */
  spec: QuantSpec;
  /** The spec that ran: with the papers' first/last-layer conventions written out as overrides. */
  effective: QuantSpec;
  mode: 'ptq' | 'qat';
  /** Fake quantizers of the layers that quantize anything, in execution order. */
  layers: FakeQuantLayer[];
  /** Every conv and linear layer, in execution order, with shapes. */
  info: LayerInfo[];
  /** Batch norms folded into layers (PTQ). */
  folded: FoldPair[];
  /** Layers that were given a bias (folding, bias correction). */
  addedBias: string[];
  /** How it was made: calibration method and samples, training epochs, ... (goes into the file). */
  details: Record<string, unknown>;
  /** The float model's metadata (preprocessing, dataset, classes). */
  sourceMetadata: Record<string, unknown>;
}

/** A new model with the same architecture and a copy of the weights. */
export function cloneModel(src: ModelSource): Module {
  const model = freshModel(src, 0);
  model.loadStateDict(src.model.stateDict());
  return model;
}

/** A freshly initialized model of the same architecture (training from scratch). */
export function freshModel(src: ModelSource, seed: number): Module {
  // An imported model's architecture is its graph description, not a zoo name.
  if (src.model instanceof GraphModule) return GraphModule.fromDescription(src.model.graph, new Random(seed));
  return buildModel(src.name, src.config, seed).model;
}

/** Check that a batch has the shape the model takes; the error names the data and the expected shape. */
export function checkInputShape(src: ModelSource, x: Tensor, what: string): void {
  const c = src.config;
  const [, C, H, W] = x.shape;
  if (x.rank !== 4 || C !== c.inChannels || H !== c.inputSize || W !== c.inputSize) {
    throw new LowbitError(
      `${what} has inputs of shape [${x.shape.slice(1).join(', ')}], but ${src.name} takes [${c.inChannels}, ${c.inputSize}, ${c.inputSize}] ` +
        '(channels, height, width); use a dataset of the kind the model was trained on',
    );
  }
}

/**
 * Resolve the spec against the model's layers (unknown layer names in overrides are an error; the
 * first/last-layer convention is applied) and create a fake quantizer for every layer that quantizes anything.
 */
export function attachQuantizers(
  trace: ModelTrace,
  specText: string | QuantSpec,
  opts: FakeQuantOptions & { firstLast?: FirstLastPolicy; seed?: number },
): { spec: QuantSpec; effective: QuantSpec; layers: FakeQuantLayer[] } {
  const spec = typeof specText === 'string' ? parseSpec(specText) : specText;
  const info = quantizableLayers(trace);
  const names = info.map((l) => l.name);
  spec.checkLayers(names);
  const effective = effectiveSpec(spec, names, opts.firstLast ?? 'auto');
  const layers: FakeQuantLayer[] = [];
  info.forEach((l, i) => {
    const scheme = effective.forLayer(l.name);
    if (!scheme.weight && !scheme.activation && !scheme.gradient) return;
    layers.push(new FakeQuantLayer(l.name, l.module, scheme, { ...opts, seed: ((opts.seed ?? 0) * 7919 + i * 104729) >>> 0 }));
  });
  if (layers.length === 0 && (spec.global.weight || spec.global.activation || spec.global.gradient || spec.overrides.length)) {
    throw new LowbitError(`spec "${spec.text}" leaves every layer of the model in fp32 (layers: ${names.join(', ')})`);
  }
  return { spec, effective, layers };
}

/** Free the quantized model's tensors (the model's weights and the quantizers' parameters). */
export function disposeQuantized(q: QuantizedModel): void {
  for (const l of q.layers) l.dispose();
  q.model.dispose();
}
