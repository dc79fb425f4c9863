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

/** Numbers a built model may hold beyond what its file justifies (a header is data: it must not make lowbit allocate gigabytes). */
const MIN_PARAMETER_BUDGET = 2 ** 20;
/** Loading traces the model on one image of its input size: a header may not ask for a gigantic one. */
const MAX_INPUT_SIZE = 512;
const defaultSizes = new Map<string, { base: number; areaDependent: boolean }>();

/** About how many numbers (parameters and buffers) the architecture of a header holds; an error if its config is malformed. */
function architectureSize(header: { name: string; config: Record<string, unknown> }): number {
  const bad = (what: string) => new LowbitError(`the model file's architecture ${what}; the file is damaged, re-export it`);
  const count = (v: unknown) => (Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0) ? v.reduce((p: number, d: number) => p * d, 1) : Infinity);
  if (header.name === GRAPH_MODEL) {
    const g = (header.config as { graph?: Partial<GraphDescription> }).graph;
    if (!g || !Array.isArray(g.layers) || !Array.isArray(g.constants)) throw bad('has no valid graph description');
    let n = 0;
    for (const l of g.layers as unknown as Record<string, unknown>[]) {
      if (l?.kind === 'conv') n += count([l.outChannels, l.inChannels, ...((l.kernel as number[] | undefined) ?? [NaN])]) / (Number(l.groups) || 1) + Number(l.outChannels);
      else if (l?.kind === 'linear') n += count([l.inFeatures, l.outFeatures]) + Number(l.outFeatures);
      else if (l?.kind === 'batchNorm') n += 4 * count([l.channels]);
      else throw bad(`has a layer of unknown kind ${JSON.stringify(l?.kind)}`);
    }
    for (const c of g.constants) n += count(c?.shape);
    if (!Number.isFinite(n)) throw bad('has a layer or constant with invalid sizes');
    return n;
  }
  const entry = zooEntry(header.name);
  const config = { ...entry.defaults, ...(header.config as Partial<ModelConfig>) };
  for (const k of ['inChannels', 'inputSize', 'classes', 'width'] as const) {
    if (config[k] !== undefined && !(Number.isSafeInteger(config[k]) && config[k]! >= 1)) throw bad(`has ${k} ${JSON.stringify(config[k])}, not a positive integer`);
  }
  // Parameters grow with width squared and at most linearly with classes and input channels; with the input
  // area only where a flatten feeds a linear layer (LeNet, MLP), found by building the default model at twice
  // its input size (once per architecture). The factor 3 covers the borders that convolutions trim.
  if (!defaultSizes.has(entry.name)) {
    const numbers = (c: ModelConfig) => {
      const m = buildModel(entry.name, c, 0).model;
      const n = [...m.stateDict().values()].reduce((p, t) => p + t.size, 0);
      m.dispose();
      return n;
    };
    const base = numbers(entry.defaults);
    defaultSizes.set(entry.name, { base, areaDependent: numbers({ ...entry.defaults, inputSize: 2 * entry.defaults.inputSize }) > base });
  }
  if (config.inputSize > MAX_INPUT_SIZE) throw bad(`has inputSize ${config.inputSize}; lowbit's zoo models take images up to ${MAX_INPUT_SIZE}x${MAX_INPUT_SIZE}`);
  const { base, areaDependent } = defaultSizes.get(entry.name)!;
  const d = entry.defaults;
  const area = areaDependent ? 3 * Math.max(1, config.inputSize / d.inputSize) ** 2 : 1;
  return base * ((config.width ?? 1) / (d.width ?? 1)) ** 2 * Math.max(1, config.classes / d.classes) * Math.max(1, config.inChannels / d.inChannels) * area;
}

/**
 * Build the architecture a file header names (zoo model or graph description), with fresh weights from `seed`.
 * `fileNumbers` (the numbers the file holds) bounds what the header may make lowbit allocate.
 */
export function buildFromHeader(header: { name: string; config: Record<string, unknown> }, seed = 0, fileNumbers = Infinity): { name: string; config: ModelConfig; model: Module } {
  const size = architectureSize(header);
  const budget = Math.max(MIN_PARAMETER_BUDGET, 4 * fileNumbers);
  if (size > budget) {
    throw new LowbitError(`the model file's header describes a ${header.name} of about ${Math.round(size).toLocaleString('en-US')} numbers, the file holds ${fileNumbers.toLocaleString('en-US')}; the header is damaged, re-export the model`);
  }
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

/** How many numbers a file's tensors hold. */
export function fileNumbers(tensors: Map<string, { size: number }>): number {
  let n = 0;
  for (const t of tensors.values()) n += t.size;
  return n;
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
    built = buildFromHeader(file.model, 0, fileNumbers(file.tensors));
  } catch (e) {
    for (const t of file.tensors.values()) t.dispose();
    throw e;
  }
  const { name, config, model } = built;
  try {
    model.loadStateDict(file.tensors);
  } catch (e) {
    model.dispose();
    const checkpoint = [...file.tensors.keys()].some((k) => k.startsWith('optim.'));
    const hint = checkpoint ? '; this is a training checkpoint, not a model: rerun its `lowbit train ... --resume` command, which writes the model file' : '';
    throw new LowbitError(`${path}: ${(e as Error).message.replace(/^lowbit: /, '')}${hint}`);
  } finally {
    for (const t of file.tensors.values()) t.dispose();
  }
  return { name, config, model, metadata: file.metadata };
}
