// Saving and loading zoo models as .lowbit files, and the committed trained weights ("zoo:<name>").

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LowbitError } from '../errors.js';
import { loadModelFile, saveModelFile } from '../formats/lowbit.js';
import type { Module } from '../nn/index.js';
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

export function saveModel(path: string, name: string, config: ModelConfig, model: Module, metadata: Record<string, unknown> = {}): void {
  saveModelFile(path, { name, config: { ...config } }, model.stateDict(), metadata);
}

/** Load a model file, or committed weights with "zoo:<name>" (e.g. zoo:lenet5-mnist). */
export function loadModel(spec: string): LoadedModel {
  let path = spec;
  if (spec.startsWith('zoo:')) {
    path = `${WEIGHTS_DIR}${spec.slice(4)}.lowbit`;
    if (!existsSync(path)) throw new LowbitError(`no trained weights named ${spec} (looked for ${path}); train them with \`lowbit train\``);
  }
  const file = loadModelFile(path);
  const entry = zooEntry(file.model.name);
  const config = { ...entry.defaults, ...(file.model.config as Partial<ModelConfig>) };
  const { model } = buildModel(entry.name, config, 0);
  try {
    model.loadStateDict(file.tensors);
  } catch (e) {
    model.dispose();
    throw new LowbitError(`${path}: ${(e as Error).message.replace(/^lowbit: /, '')}`);
  } finally {
    for (const t of file.tensors.values()) t.dispose();
  }
  return { name: entry.name, config, model, metadata: file.metadata };
}
