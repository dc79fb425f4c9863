// Saving and loading zoo models as .lowbit files, and the committed trained weights ("zoo:<name>").

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LowbitError } from '../errors.js';
import { loadModelFile, saveModelFile } from '../formats/lowbit.js';
import { GraphModule, type GraphDescription, type Module } from '../nn/index.js';
import { extractInputNormalization, importOnnx } from '../formats/onnx/import.js';
import { Random } from '../tensor/random.js';
import { buildModel, zooEntry, type ModelConfig } from './models.js';

export { ZOO, buildModel, zooEntry } from './models.js';
export type { ModelConfig, ZooEntry } from './models.js';

/** Folder of the committed trained weights: <repo>/models/<name>.lowbit */
export const WEIGHTS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url));

export interface LoadedModel {
  name: string;
  config: ModelConfig;
  model: Module;
  metadata: Record<string, unknown>;
}

/** Model name in a file header whose architecture is a GraphModule description (imported models), not a zoo entry. */
export const GRAPH_MODEL = 'graph';

/** The header that rebuilds `model`: its zoo name and config, or for a GraphModule the graph description. */
export function modelHeader(name: string, config: ModelConfig, model: Module): { name: string; config: Record<string, unknown> } {
  if (model instanceof GraphModule) return { name: GRAPH_MODEL, config: { ...config, graph: model.graph } };
  return { name, config: { ...config } };
}

/** Build the architecture a file header names (zoo model or graph description), with fresh weights from `seed`. */
export function buildFromHeader(header: { name: string; config: Record<string, unknown> }, seed = 0): { name: string; config: ModelConfig; model: Module } {
  if (header.name === GRAPH_MODEL) {
    const { graph, ...config } = header.config as Record<string, unknown> & { graph: GraphDescription };
    try {
      return { name: GRAPH_MODEL, config: config as unknown as ModelConfig, model: GraphModule.fromDescription(graph, new Random(seed)) };
    } catch (e) {
      throw new LowbitError(`the model file's graph description is invalid: ${(e as Error).message.replace(/^lowbit: /, '')}`);
    }
  }
  const entry = zooEntry(header.name);
  const config = { ...entry.defaults, ...(header.config as Partial<ModelConfig>) };
  return { name: entry.name, config, model: buildModel(entry.name, config, seed).model };
}

export function saveModel(path: string, name: string, config: ModelConfig, model: Module, metadata: Record<string, unknown> = {}): void {
  saveModelFile(path, modelHeader(name, config, model), model.stateDict(), metadata);
}

/**
 * Import an ONNX CNN (float32 [N, C, H, W] input, [N, classes] output) as a GraphModule. Inputs are taken
 * as exported models take them: pixels / 255 in [0, 1] with any normalization inside the graph.
 */
export function loadOnnxModel(path: string, opts: { inputShape?: number[] } = {}): LoadedModel {
  const imported = importOnnx(path, opts);
  const { inputShape, outputShape } = imported;
  let module = imported.module;
  if (imported.inputs.length !== 1 || inputShape.length !== 4 || outputShape.length !== 2) {
    module.dispose();
    throw new LowbitError(
      `${path} takes ${imported.inputs.length} input(s) of shape [${inputShape.join(', ')}] and gives [${outputShape.join(', ')}]; ` +
        'lowbit loads ONNX CNNs with one [N, C, H, W] image input and an [N, classes] output (use importOnnx() for other graphs)',
    );
  }
  const [, C, H, W] = inputShape;
  if (H !== W) {
    module.dispose();
    throw new LowbitError(`${path} takes ${H}x${W} images; lowbit's datasets and models use square images (give --input-shape 1,${C},${H},${H} if the model accepts it)`);
  }
  const config: ModelConfig = { inChannels: C, inputSize: H, classes: outputShape[1] };
  // A leading (x - mean) / std moves into the metadata: the model then takes normalized input, as zoo models do.
  let preprocess = { mean: new Array<number>(C).fill(0), std: new Array<number>(C).fill(1) };
  const split = extractInputNormalization(module);
  if (split) {
    module.dispose();
    module = split.module;
    preprocess = { mean: split.mean, std: split.std };
  }
  const metadata = {
    preprocess,
    onnx: { file: path, opset: imported.opset, producer: imported.producer },
  };
  return { name: 'onnx', config, model: module, metadata };
}

/** Load a model file (.lowbit, or .onnx imported), or committed weights with "zoo:<name>" (e.g. zoo:lenet5-mnist). */
export function loadModel(spec: string): LoadedModel {
  if (spec.toLowerCase().endsWith('.onnx')) return loadOnnxModel(spec);
  let path = spec;
  if (spec.startsWith('zoo:')) {
    path = `${WEIGHTS_DIR}${spec.slice(4)}.lowbit`;
    if (!existsSync(path)) throw new LowbitError(`no trained weights named ${spec} (looked for ${path}); train them with \`lowbit train\``);
  }
  const file = loadModelFile(path);
  let built: ReturnType<typeof buildFromHeader>;
  try {
    built = buildFromHeader(file.model);
  } catch (e) {
    for (const t of file.tensors.values()) t.dispose();
    throw e;
  }
  const { name, config, model } = built;
  try {
    model.loadStateDict(file.tensors);
  } catch (e) {
    model.dispose();
    throw new LowbitError(`${path}: ${(e as Error).message.replace(/^lowbit: /, '')}`);
  } finally {
    for (const t of file.tensors.values()) t.dispose();
  }
  return { name, config, model, metadata: file.metadata };
}
