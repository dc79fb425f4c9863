// Tensor: a dense, row-major (NCHW for images) array of f32, i32, i8 or u8 whose bytes live in the engine's
// WebAssembly memory. Shapes are plain number arrays; every tensor is contiguous, so a reshape is a view
// that shares storage and everything else is a new tensor written by a kernel.

import type { Ptr } from '../kernels/memory.js';
import type { DType } from '../kernels/types.js';
import { engine } from './engine.js';

export type { DType } from '../kernels/types.js';
export type Shape = readonly number[];
export type TypedArrayOf<D extends DType> = D extends 'f32'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends 'i8'
      ? Int8Array
      : Uint8Array;

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, i32: 4, i8: 1, u8: 1 };

/** A block of engine memory shared by a tensor and its reshaped views. */
class Storage {
  refs = 1;
  constructor(
    readonly ptr: Ptr,
    readonly bytes: number,
  ) {}
  release(): void {
    if (--this.refs === 0) engine.memory.free(this.ptr);
  }
}

/** How a tensor was made, for reverse-mode autograd (set by ops when an input requires a gradient). */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Given dL/d(output), return dL/d(input) for each input (null where the input needs none). */
  backward: (gradOutput: Tensor) => (Tensor | null)[];
}

// Backstop for tensors nobody disposed: free their storage when the JavaScript object is collected.
const finalizer = new FinalizationRegistry<Storage>((s) => s.release());

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`lowbit: invalid shape ${formatShape(shape)}`);
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** Set on leaves (parameters) to accumulate dL/dself into `grad` during backward(). */
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The op that produced this tensor, when its gradient is needed. */
  node: GradNode | null = null;
  /** Optional name (parameters carry their layer name) used in error messages. */
  name?: string;
  private storage: Storage | null;

  private constructor(shape: Shape, dtype: DType, storage: Storage) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    this.storage = storage;
    finalizer.register(this, storage, this);
    engine.track(this);
  }

  /** A new tensor with uninitialized contents. */
  static empty(shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape(shape);
    const bytes = shapeSize(shape) * BYTES_PER_ELEMENT[dtype];
    return new Tensor(shape, dtype, new Storage(engine.memory.alloc(bytes), bytes));
  }

  static zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
    const t = Tensor.empty(shape, dtype);
    engine.memory.u8.fill(0, t.ptr, t.ptr + t.byteLength);
    return t;
  }

  static full(shape: Shape, value: number): Tensor {
    const t = Tensor.empty(shape, 'f32');
    engine.kernels.fill(t.ptr, t.size, value);
    return t;
  }

  static ones(shape: Shape): Tensor {
    return Tensor.full(shape, 1);
  }

  static scalar(value: number): Tensor {
    return Tensor.full([], value);
  }

  /** A tensor holding a copy of `values` (a nested array, a flat array with `shape`, or a typed array). */
  static from(values: ArrayLike<number> | number[][] | number[][][] | number[][][][], shape?: Shape, dtype?: DType): Tensor {
    const flat = (isNested(values) ? (values as unknown[]).flat(Infinity as 1) : values) as ArrayLike<number>;
    const inferredShape = shape ?? (isNested(values) ? nestedShape(values) : [flat.length]);
    if (shapeSize(inferredShape) !== flat.length) {
      throw new RangeError(`lowbit: ${flat.length} values do not fill shape ${formatShape(inferredShape)}`);
    }
    const type =
      dtype ??
      (flat instanceof Int32Array ? 'i32' : flat instanceof Int8Array ? 'i8' : flat instanceof Uint8Array ? 'u8' : 'f32');
    const t = Tensor.empty(inferredShape, type);
    t.view().set(flat);
    return t;
  }

  get ptr(): Ptr {
    if (!this.storage) throw new Error(`lowbit: tensor ${this.describe()} was used after dispose()`);
    return this.storage.ptr;
  }

  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  /** A live view of the tensor's memory. Invalid after the engine memory grows: do not keep it. */
  view(): Float32Array | Int32Array | Int8Array | Uint8Array {
    const m = engine.memory, p = this.ptr;
    switch (this.dtype) {
      case 'f32': return m.f32.subarray(p >>> 2, (p >>> 2) + this.size);
      case 'i32': return m.i32.subarray(p >>> 2, (p >>> 2) + this.size);
      case 'i8': return m.i8.subarray(p, p + this.size);
      case 'u8': return m.u8.subarray(p, p + this.size);
    }
  }

  /** A copy of the contents as a typed array of the tensor's dtype. */
  toArray(): Float32Array | Int32Array | Int8Array | Uint8Array {
    return this.view().slice();
  }

  /** A copy of the contents as a Float32Array (f32 tensors only). */
  toFloat32Array(): Float32Array {
    if (this.dtype !== 'f32') throw new TypeError(`lowbit: toFloat32Array of a ${this.dtype} tensor; cast it first`);
    return this.view().slice() as Float32Array;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`lowbit: item() of a tensor of shape ${formatShape(this.shape)}`);
    return this.view()[0];
  }

  /** A tensor of another shape with the same elements, sharing storage. */
  reshapeView(shape: Shape): Tensor {
    const storage = this.storage;
    if (!storage) throw new Error(`lowbit: tensor ${this.describe()} was used after dispose()`);
    if (shapeSize(shape) !== this.size) throw new RangeError(`lowbit: reshapeView: ${this.describe()} has ${this.size} elements, shape ${formatShape(shape)} needs ${shapeSize(shape)}`);
    storage.refs++;
    return new Tensor(shape, this.dtype, storage);
  }

  /** Copy the contents of `src` (same size and dtype) into this tensor, in place. */
  assign(src: Tensor): this {
    if (src.size !== this.size || src.dtype !== this.dtype) {
      throw new TypeError(
        `lowbit: assign: ${src.dtype} ${formatShape(src.shape)} into ${this.dtype} ${formatShape(this.shape)}`,
      );
    }
    engine.memory.u8.copyWithin(this.ptr, src.ptr, src.ptr + src.byteLength);
    return this;
  }

  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    finalizer.unregister(this);
    s.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    this.node = null;
  }

  describe(): string {
    return `${this.name ? this.name + ' ' : ''}${this.dtype}${formatShape(this.shape)}`;
  }

  toString(): string {
    const v = this.isDisposed ? '(disposed)' : Array.from(this.view().subarray(0, 8)).map((x) => +x.toPrecision(4)).join(', ');
    return `Tensor ${this.describe()} [${v}${this.size > 8 ? ', ...' : ''}]`;
  }
}

function isNested(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0 && Array.isArray(v[0]);
}

function nestedShape(v: unknown): number[] {
  const shape: number[] = [];
  let cur: unknown = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}
