// The engine's one linear memory. Every tensor's bytes live here so that the WebAssembly kernels (and the
// worker threads sharing this memory) read them without copies. Pointers are byte offsets into it.
//
// The allocator is a size-class free list: freed blocks are kept per rounded size and reused by the next
// allocation of that class. Training loops allocate the same sizes every step, so reuse is near perfect
// and there is no coalescing to get wrong. WebAssembly memory never shrinks.

export type Ptr = number;

const PAGE = 65536;
/** Every block starts on a 64-byte boundary: one cache line, and aligned for every SIMD load. */
export const ALIGN = 64;
/** 4 GiB is the wasm32 limit; a shared memory must declare its maximum up front (it is only reserved). */
const MAX_PAGES = 65536;

export class OutOfMemoryError extends Error {
  constructor(bytes: number, inUse: number) {
    super(
      `lowbit: cannot allocate ${formatBytes(bytes)} in WebAssembly memory (${formatBytes(inUse)} in use, ` +
        `limit 4 GiB). Use a smaller batch size or model, or dispose tensors you no longer need.`,
    );
    this.name = 'OutOfMemoryError';
  }
}

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** Round a request up to its size class: powers of two split in 4 steps (16 above 1 MiB). */
export function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 1024) return b;
  const top = 2 ** Math.floor(Math.log2(b));
  // 4 steps per power of two (at most 25% waste) up to 1 MiB; 16 above (at most 6%): big blocks are few and
  // their waste is what a model's memory peak is made of.
  const step = b > 2 ** 20 ? top / 16 : top / 4;
  return Math.ceil(b / step) * step;
}

export class EngineMemory {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  private top: number;
  private readonly freeLists = new Map<number, Ptr[]>();
  private readonly blockSize = new Map<Ptr, number>();
  private live = 0;
  private peak = 0;
  // Typed views, rebuilt whenever the memory grows (a grown memory has a new, longer buffer).
  private viewBuffer: ArrayBufferLike | null = null;
  private _f32!: Float32Array;
  private _i32!: Int32Array;
  private _u8!: Uint8Array;
  private _i8!: Int8Array;
  private _u32!: Uint32Array;

  /**
   * @param base first byte the allocator may hand out (everything below belongs to the wasm module's
   *   static data); @param initialBytes initial size.
   */
  constructor(opts: { shared?: boolean; base?: number; initialBytes?: number; memory?: WebAssembly.Memory } = {}) {
    this.shared = opts.shared ?? typeof SharedArrayBuffer !== 'undefined';
    const initialPages = Math.max(2, Math.ceil((opts.initialBytes ?? 16 * 2 ** 20) / PAGE));
    this.memory =
      opts.memory ??
      new WebAssembly.Memory(
        this.shared
          ? { initial: initialPages, maximum: MAX_PAGES, shared: true }
          : { initial: initialPages, maximum: MAX_PAGES },
      );
    this.top = Math.ceil((opts.base ?? PAGE) / ALIGN) * ALIGN;
    this.refresh();
  }

  /** Bytes currently handed out (by size class). */
  /** The most bytes in use at once since the last resetPeak() (memory budgets, benchmarks). */
  get peakBytesInUse(): number {
    return this.peak;
  }
  resetPeak(): void {
    this.peak = this.live;
  }
  get bytesInUse(): number {
    return this.live;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** Raise the allocator's floor (used once, when the wasm module declares how much static data it has). */
  reserveBelow(base: number): void {
    if (this.blockSize.size > 0) throw new Error('lowbit: reserveBelow after allocations');
    this.top = Math.max(this.top, Math.ceil(base / ALIGN) * ALIGN);
  }

  alloc(bytes: number): Ptr {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`lowbit: invalid allocation size ${bytes}`);
    const size = sizeClass(bytes);
    const list = this.freeLists.get(size);
    let ptr: Ptr;
    if (list && list.length > 0) {
      ptr = list.pop()!;
    } else {
      ptr = this.top;
      const end = ptr + size;
      if (end > MAX_PAGES * PAGE) throw new OutOfMemoryError(bytes, this.live);
      if (end > this.memory.buffer.byteLength) {
        const need = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
        // Grow by at least a quarter of the current size so that growth is rare.
        const current = this.memory.buffer.byteLength / PAGE;
        const grow = Math.min(MAX_PAGES - current, Math.max(need, Math.ceil(current / 4)));
        try {
          this.memory.grow(grow);
        } catch {
          try {
            this.memory.grow(need);
          } catch {
            throw new OutOfMemoryError(bytes, this.live);
          }
        }
        this.refresh();
      }
      this.top = end;
    }
    this.blockSize.set(ptr, size);
    this.live += size;
    if (this.live > this.peak) this.peak = this.live;
    return ptr;
  }

  free(ptr: Ptr): void {
    const size = this.blockSize.get(ptr);
    if (size === undefined) throw new Error(`lowbit: free of unknown pointer ${ptr}`);
    this.blockSize.delete(ptr);
    this.live -= size;
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(ptr);
  }

  /** Rebuild the typed views if the memory has grown since they were made. */
  refresh(): void {
    const buf = this.memory.buffer;
    if (buf === this.viewBuffer && this._f32.byteLength === buf.byteLength) return;
    this.viewBuffer = buf;
    this._f32 = new Float32Array(buf);
    this._i32 = new Int32Array(buf);
    this._u32 = new Uint32Array(buf);
    this._u8 = new Uint8Array(buf);
    this._i8 = new Int8Array(buf);
  }

  // Views over the whole memory; index with ptr >>> 2 (4-byte types) or ptr (bytes).
  get f32(): Float32Array {
    this.refresh();
    return this._f32;
  }
  get i32(): Int32Array {
    this.refresh();
    return this._i32;
  }
  get u32(): Uint32Array {
    this.refresh();
    return this._u32;
  }
  get u8(): Uint8Array {
    this.refresh();
    return this._u8;
  }
  get i8(): Int8Array {
    this.refresh();
    return this._i8;
  }
}
