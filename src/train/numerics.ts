// NaN and Inf are reported where they enter, with a name: a weight of a layer, an input batch, or the first
// layer whose output goes non-finite. Left alone they propagate into every logit, argmax picks class 0 and
// the model silently scores the frequency of one class (10% on a balanced 10-class test set).

import { hasNonFinite, noGrad } from '../autograd/index.js';
import { LowbitError } from '../errors.js';
import type { Module } from '../nn/index.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkFinite } from '../formats/finite.js';

/** The path of the first leaf module whose output holds NaN/Inf for input x (null if none does). */
export function firstNonFiniteLayer(model: Module, x: Tensor): string | null {
  const leaves = model.namedModules().filter(([name, m]) => name !== '' && m.namedChildren().length === 0);
  let found: string | null = null;
  const originals = leaves.map(([name, m]) => {
    const forward = m.forward;
    m.forward = (input: Tensor) => {
      const y = forward.call(m, input);
      if (found === null && hasNonFinite(y)) found = name;
      return y;
    };
    return () => { m.forward = forward; };
  });
  try {
    noGrad(() => tidy(() => { model.forward(x); }));
  } finally {
    for (const restore of originals) restore();
  }
  return found;
}

/**
 * Check an evaluation batch and its logits: NaN/Inf in the input names the batch, NaN/Inf appearing inside
 * the model names the first layer that produced it.
 */
export function checkEvaluationBatch(model: Module, x: Tensor, logits: Tensor, batch: number): void {
  if (hasNonFinite(x)) {
    checkFinite(x.toFloat32Array(), `input batch ${batch + 1} (images ${batch * x.shape[0] + 1}..)`, 'check the dataset and the model\'s preprocessing (a standard deviation of 0?)');
  }
  if (!hasNonFinite(logits)) return;
  const layer = firstNonFiniteLayer(model, x);
  throw new LowbitError(
    `the model's output holds NaN/Inf on input batch ${batch + 1} although the input is finite` +
      (layer ? `: layer ${layer} produced it first` : '') +
      '; check that layer\'s weights and quantizer parameters, or re-export / retrain the model',
  );
}
