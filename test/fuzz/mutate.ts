// Mutations of valid files, as fast-check arbitraries: truncation at every section boundary (and anywhere),
// bit flips, overwritten and inserted random bytes, declared sizes replaced by huge, negative or off-by-one
// values, and structured edits of JSON headers (wrong dtypes, sizes that disagree with shapes).

import fc from 'fast-check';

/** A valid file and where its sections start and its declared sizes live. */
export interface Seed {
  name: string;
  bytes: Uint8Array;
  /** Offsets where a section starts or ends (truncation points). */
  boundaries: number[];
  /** Offsets of declared sizes/counts (u32), and their byte order. */
  sizeFields?: { at: number; bigEndian: boolean }[];
}

type Op =
  | { k: 'truncAtBoundary'; i: number; delta: number }
  | { k: 'truncate'; at: number }
  | { k: 'flip'; at: number; head: boolean; bit: number }
  | { k: 'overwrite'; at: number; head: boolean; bytes: Uint8Array }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; count: number }
  | { k: 'size'; field: number; value: number; at: number }
  | { k: 'random'; bytes: Uint8Array };

/** u32 values that break size arithmetic: 0, 1, 2^31 (negative as i32), 2^32-1, and sizes near the file's. */
const sizeValue = fc.oneof(
  fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 0x1000000, -1),
  fc.nat({ max: 0xffffffff }),
);

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('truncAtBoundary' as const), i: fc.nat(), delta: fc.constantFrom(-1, 0, 0, 1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), head: fc.boolean(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('overwrite' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), head: fc.boolean(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('insert' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('delete' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), count: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('size' as const), field: fc.nat(), value: sizeValue, at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 512 }) }) },
);

/** Header-heavy formats break in their first bytes: `head` positions fall in the first 256. */
function position(bytes: Uint8Array, at: number, head = false): number {
  const n = head ? Math.min(bytes.length, 256) : bytes.length;
  return Math.min(Math.floor(at * n), Math.max(n - 1, 0));
}

function apply(seed: Seed, b: Uint8Array, o: Op): Uint8Array {
  switch (o.k) {
    case 'truncAtBoundary': {
      const bounds = seed.boundaries.length ? seed.boundaries : [0];
      const at = bounds[o.i % bounds.length] + o.delta;
      return b.subarray(0, Math.max(0, Math.min(at, b.length)));
    }
    case 'truncate':
      return b.subarray(0, Math.floor(o.at * b.length));
    case 'flip': {
      if (b.length === 0) return b;
      const out = b.slice();
      out[position(b, o.at, o.head)] ^= 1 << o.bit;
      return out;
    }
    case 'overwrite': {
      if (b.length === 0) return b;
      const out = b.slice();
      const p = position(b, o.at, o.head);
      out.set(o.bytes.subarray(0, out.length - p), p);
      return out;
    }
    case 'insert': {
      const p = position(b, o.at);
      const out = new Uint8Array(b.length + o.bytes.length);
      out.set(b.subarray(0, p));
      out.set(o.bytes, p);
      out.set(b.subarray(p), p + o.bytes.length);
      return out;
    }
    case 'delete': {
      const p = position(b, o.at);
      const out = new Uint8Array(b.length - Math.min(o.count, b.length - p));
      out.set(b.subarray(0, p));
      out.set(b.subarray(Math.min(b.length, p + o.count)), p);
      return out;
    }
    case 'size': {
      const fields = seed.sizeFields ?? [];
      const f = fields.length ? fields[o.field % fields.length] : { at: position(b, o.at, true) & ~3, bigEndian: o.field % 2 === 0 };
      if (f.at + 4 > b.length) return b;
      const out = b.slice();
      new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(f.at, o.value >>> 0, !f.bigEndian);
      return out;
    }
    case 'random':
      return o.bytes;
  }
}

/** A mutated copy of one of `seeds` (1 to 3 mutations in a row), with a description for failure reports. */
export function mutatedFile(seeds: Seed[]): fc.Arbitrary<{ seed: string; ops: Op[]; bytes: Uint8Array }> {
  // Plain Uint8Array copies: Buffer.slice() is a view, and a mutation would change the seed itself.
  for (const s of seeds) if (Buffer.isBuffer(s.bytes)) s.bytes = new Uint8Array(s.bytes);
  return fc.record({ s: fc.nat(seeds.length - 1), ops: fc.array(op, { minLength: 1, maxLength: 3 }) }).map(({ s, ops }) => {
    const seed = seeds[s];
    let b = seed.bytes;
    for (const o of ops) b = apply(seed, b, o);
    return { seed: seed.name, ops, bytes: b };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Structured edits of JSON (file headers, packed-model descriptions, ONNX messages as objects)

/** Values that break readers that trust a header: huge, negative, fractional, wrong types, wrong dtypes. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0, -1, 1, 3, 0.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 60, -(2 ** 31), 1e308, -1e308,
    null, true, false, '', 'f64', 'i64', 'f16', 'u8', 'i8', 'f32', 'constant', 'conv', '__proto__', [], {}, [2 ** 31, 2 ** 31], [-1], [0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  ),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 70000 }), fc.constantFrom(2 ** 31, 2 ** 40)), { maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
);

export interface JsonEdit {
  pick: number;
  remove: boolean;
  value: unknown;
}

export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({ pick: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), remove: fc.boolean(), value: hostileJson });

/** Every (container, key) pair in a JSON value, depth first (at most `limit`). */
function slots(v: unknown, out: [Record<string, unknown> | unknown[], string | number][] = [], limit = 4000): typeof out {
  if (v === null || typeof v !== 'object' || out.length >= limit) return out;
  if (ArrayBuffer.isView(v)) return out;
  // Long arrays (tensor bytes, weights) would drown the structure: edit their first elements only.
  const keys = Array.isArray(v) ? Object.keys(v).slice(0, 4) : Object.keys(v);
  for (const k of keys) {
    const key = Array.isArray(v) ? Number(k) : k;
    out.push([v as Record<string, unknown>, key]);
    slots((v as Record<string, unknown>)[k], out, limit);
  }
  return out;
}

/** Apply edits to a deep copy of `value` (a value or key chosen uniformly among all of them). */
export function editJson<T>(value: T, edits: JsonEdit[]): T {
  const copy = structuredClone(value);
  for (const e of edits) {
    const all = slots(copy);
    if (all.length === 0) continue;
    const [container, key] = all[Math.floor(e.pick * all.length)];
    if (e.remove && !Array.isArray(container)) delete (container as Record<string, unknown>)[key as string];
    else (container as Record<string | number, unknown>)[key] = structuredClone(e.value);
  }
  return copy;
}
