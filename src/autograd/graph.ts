// Reverse-mode automatic differentiation over the tape that ops leave on their outputs (Tensor.node).
// An op computes its output with kernels, then calls record() with a closure that maps the output's
// gradient to its inputs' gradients. backward() walks the graph in reverse topological order.

import { engine, keep } from '../tensor/engine.js';
import { Tensor, formatShape } from '../tensor/tensor.js';

let gradEnabled = true;

/** Run fn without recording gradients (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** True when a gradient must flow through t. */
export function tracksGrad(t: Tensor): boolean {
  return t.requiresGrad || t.node !== null;
}

export class NumericError extends Error {
  constructor(op: string, out: Tensor, inputs: Tensor[]) {
    super(
      `lowbit: ${op} produced NaN or Inf (output ${out.describe()}, inputs ${inputs.map((t) => t.describe()).join(', ')}). ` +
        'Lower the learning rate, check the inputs for NaN, or add a small epsilon where a log/division can see 0.',
    );
    this.name = 'NumericError';
  }
}

/** True if any element of an f32 tensor is NaN or +-Inf (x * 0 is NaN exactly for those). */
export function hasNonFinite(t: Tensor): boolean {
  if (t.dtype !== 'f32' || t.size === 0) return false;
  const k = engine.kernels;
  const tmp = Tensor.empty([t.size]);
  const sum = Tensor.empty([1]);
  try {
    k.unary('affine', t.ptr, tmp.ptr, t.size, 0, 0);
    k.reduce('sum', tmp.ptr, sum.ptr, 1, t.size, 1);
    return Number.isNaN(sum.item());
  } finally {
    tmp.dispose();
    sum.dispose();
  }
}

/** Sees every op's forward: its name, output, inputs and attributes (src/runtime captures graphs with it). */
export type OpObserver = (op: string, out: Tensor, inputs: Tensor[], attrs: Record<string, unknown>) => void;
let opObserver: OpObserver | null = null;

/** Run fn with `observer` called for every op it runs (nested observers are not supported). */
export function observeOps<T>(observer: OpObserver, fn: () => T): T {
  if (opObserver) throw new Error('lowbit: observeOps: an op observer is already active');
  opObserver = observer;
  try {
    return fn();
  } finally {
    opObserver = null;
  }
}

/**
 * Attach the backward rule of `op` to `out` if any input needs a gradient. Also runs the opt-in numeric
 * check. Returns `out` so ops can end with `return record(...)`. `attrs` describe the op for graph capture.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: Tensor[],
  backward: (gradOutput: Tensor) => (Tensor | null)[],
  attrs: Record<string, unknown> = {},
): Tensor {
  if (engine.options.checkNumerics && hasNonFinite(out)) throw new NumericError(op, out, inputs);
  opObserver?.(op, out, inputs, attrs);
  if (gradEnabled && inputs.some(tracksGrad)) out.node = { op, inputs, backward };
  return out;
}

function addInto(acc: Tensor, g: Tensor): void {
  addTo(acc, acc, g);
}

/** out = a + b (same shape, contiguous): one pass, e.g. a fresh sum of two gradients without copying either first. */
function addTo(out: Tensor, a: Tensor, b: Tensor): void {
  const strides = contiguousStrides(out.shape);
  engine.kernels.binary('add', a.ptr, strides, b.ptr, strides, out.ptr, [...out.shape]);
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/**
 * Backpropagate from `root` (a scalar loss, or any tensor with `gradient` of its shape). Leaves with
 * requiresGrad accumulate into .grad (which outlives tidy scopes); the graph is released afterwards
 * unless retainGraph.
 */
export function backward(root: Tensor, gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
  if (!tracksGrad(root)) throw new Error(`lowbit: backward() of ${root.describe()}, which does not depend on any tensor with requiresGrad`);
  if (!gradient && root.size !== 1) {
    throw new Error(`lowbit: backward() of non-scalar ${root.describe()} needs an explicit gradient`);
  }
  // Reverse topological order by iterative depth-first search.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (!seen.has(child) && tracksGrad(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  const grads = new Map<Tensor, Tensor>();
  // Gradient buffers allocated here for one tensor alone, which later contributions may add into in place.
  // (A gradient handed back by a backward rule may be shared by several inputs, so it is copied first.)
  const owned = new Map<Tensor, Tensor>();
  grads.set(root, gradient ?? Tensor.ones(root.shape));

  noGrad(() => {
    for (let j = order.length - 1; j >= 0; j--) {
      const t = order[j];
      const g = grads.get(t);
      if (!g) continue;
      if (t.node) {
        const inGrads = t.node.backward(g);
        t.node.inputs.forEach((input, i) => {
          const gi = inGrads[i];
          if (!gi || !tracksGrad(input)) return;
          if (gi.size !== input.size) {
            throw new Error(
              `lowbit: backward of ${t.node!.op} returned a gradient of shape ${formatShape(gi.shape)} for input ${input.describe()}`,
            );
          }
          const prev = grads.get(input);
          if (!prev) {
            grads.set(input, gi);
          } else if (owned.get(input) === prev) {
            addInto(prev, gi);
          } else {
            const sum = Tensor.empty(input.shape);
            addTo(sum, prev, gi);
            owned.set(input, sum);
            grads.set(input, sum);
          }
        });
        if (engine.options.checkNumerics) {
          for (const gi of inGrads) if (gi && hasNonFinite(gi)) throw new NumericError(`${t.node.op} (backward)`, gi, t.node.inputs);
        }
        if (!opts.retainGraph && t !== root) t.node = null;
      }
      if (t.requiresGrad) {
        if (t.grad) addInto(t.grad, g);
        else {
          t.grad = keep(Tensor.empty(t.shape)).assign(g);
        }
      }
    }
  });
  if (!opts.retainGraph) root.node = null;
}

/**
 * An op with a user-defined gradient: `forward` computes the output from the inputs (no gradient is
 * recorded inside it), `backward` maps dL/d(output) to dL/d(each input). The straight-through
 * estimators of the quantizers are built with this.
 */
export function customGrad(
  op: string,
  inputs: Tensor[],
  forward: () => Tensor,
  backward: (gradOutput: Tensor, output: Tensor) => (Tensor | null)[],
): Tensor {
  const out = noGrad(forward);
  return record(op, out, inputs, (g) => backward(g, out));
}
