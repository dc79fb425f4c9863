// NaN/Inf in stored weights are refused when a file is read, with the tensor's or layer's name (the
// evaluation side is src/train/numerics.ts).

import { LowbitError } from '../errors.js';

/** Count and first index of the NaN/Inf elements of float data. */
export function countNonFinite(values: ArrayLike<number>): { count: number; first: number } {
  let count = 0, first = -1;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      if (first < 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** A LowbitError if named float data holds NaN or Inf (`what`: "layer conv1 weights", "tensor fc.bias of m.lowbit"). */
export function checkFinite(values: ArrayLike<number>, what: string, todo: string): void {
  const { count, first } = countNonFinite(values);
  if (count > 0) throw new LowbitError(`${what} holds ${count} NaN/Inf value${count > 1 ? 's' : ''} (first at element ${first}, ${values[first]}); ${todo}`);
}
