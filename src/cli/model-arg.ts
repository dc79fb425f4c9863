// The --model argument the commands share: committed zoo weights, a .lowbit file, or an ONNX model.

import { UsageError } from '../errors.js';

/** A usage error unless `model` names a kind of model file lowbit reads. */
export function checkModelArgument(model: string): void {
  if (model.startsWith('zoo:') || model.endsWith('.lowbit') || model.endsWith('.onnx')) return;
  throw new UsageError(`--model ${model}: give a .lowbit or .onnx file or zoo:<name> (e.g. zoo:lenet5-mnist)`);
}
