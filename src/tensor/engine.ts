// The engine: one memory, one active kernel backend, and the scopes that free intermediate tensors.
//
// Tensors are freed deterministically: `tidy(fn)` disposes every tensor created inside fn except those it
// returns (as TensorFlow.js does), because the JavaScript garbage collector does not see WebAssembly memory
// pressure. Tensors created outside any scope live until dispose() (or, as a backstop, until the
// garbage collector reclaims their JavaScript object).

import { EngineMemory } from '../kernels/memory.js';
import type { Kernels } from '../kernels/types.js';
import { createRefKernels } from '../kernels/ref/index.js';

export interface Disposable {
  dispose(): void;
}

export interface EngineOptions {
  /** Check every op's output for NaN/Inf and throw naming the op (slow; for debugging training). */
  checkNumerics: boolean;
}

class Engine {
  readonly memory = new EngineMemory();
  readonly refKernels: Kernels = createRefKernels(this.memory);
  kernels: Kernels = this.refKernels;
  readonly options: EngineOptions = { checkNumerics: false };
  private scopes: Set<Disposable>[] = [];

  track(t: Disposable): void {
    const top = this.scopes[this.scopes.length - 1];
    if (top) top.add(t);
  }

  /** Remove t from the current scope so that tidy() does not dispose it. */
  untrack(t: Disposable): void {
    for (const s of this.scopes) s.delete(t);
  }

  startScope(): void {
    this.scopes.push(new Set());
  }

  /** End the innermost scope: dispose what it tracked except `keep`, which moves to the parent scope. */
  endScope(keep: Set<Disposable>): void {
    const scope = this.scopes.pop();
    if (!scope) throw new Error('lowbit: endScope without startScope');
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of scope) {
      if (keep.has(t)) parent?.add(t);
      else t.dispose();
    }
  }
}

export const engine = new Engine();

/** Collect the disposables found in a value returned from tidy (a tensor, an array or a plain object). */
function collect(value: unknown, out: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if (typeof (value as Disposable).dispose === 'function' && 'shape' in (value as object)) {
    out.add(value as Disposable);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const v of items) collect(v, out, depth + 1);
}

/** Run fn and dispose every tensor it created, except those in its result. */
export function tidy<T>(fn: () => T): T {
  engine.startScope();
  let result: T;
  const keep = new Set<Disposable>();
  try {
    result = fn();
    collect(result, keep);
  } finally {
    engine.endScope(keep);
  }
  return result;
}

/** The same as tidy for async functions: tensors created while fn awaits are tracked too. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  engine.startScope();
  const keep = new Set<Disposable>();
  try {
    const result = await fn();
    collect(result, keep);
    return result;
  } finally {
    engine.endScope(keep);
  }
}

/** Make t outlive the scopes it was created in (parameters, optimizer state, results kept by callers). */
export function keep<T extends Disposable>(t: T): T {
  engine.untrack(t);
  return t;
}
