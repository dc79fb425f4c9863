// The .lowbit model file: data only, never code.
//
//   bytes 0..7    magic "LOWBIT\0" + format version byte (1)
//   bytes 8..11   header length H (u32 little-endian)
//   bytes 12..    H bytes of UTF-8 JSON: { model: {name, config}, tensors: [{name, dtype, shape, offset,
//                 byteLength}], metadata }
//   then          the data area, starting at the first multiple of 64 after the header; each tensor's
//                 `offset` is relative to it and a multiple of 64
//
// Every declared size is checked against the file before anything is allocated, so a corrupt or hostile
// file ends in a LowbitError, not a crash or a huge allocation.

import { readFileSync } from 'node:fs';
import { LowbitError } from '../errors.js';
import { Tensor, BYTES_PER_ELEMENT, shapeSize, type DType } from '../tensor/tensor.js';
import { writeFileAtomic } from './atomic.js';
import { checkFinite } from './finite.js';

// TextEncoder/TextDecoder rather than Buffer: the runtime's loader also runs in a browser (the playground).
const MAGIC = new TextEncoder().encode('LOWBIT\0');
const VERSION = 1;
const ALIGN = 64;
const MAX_HEADER = 64 * 2 ** 20;
const DTYPES: DType[] = ['f32', 'i32', 'i8', 'u8'];

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  byteLength: number;
}

export interface ModelHeader {
  model: { name: string; config: Record<string, unknown> };
  tensors: TensorEntry[];
  metadata: Record<string, unknown>;
}

export interface ModelFile {
  model: ModelHeader['model'];
  metadata: Record<string, unknown>;
  tensors: Map<string, Tensor>;
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Serialize tensors with a model description and metadata. */
export function encodeModelFile(model: ModelHeader['model'], tensors: Map<string, Tensor>, metadata: Record<string, unknown> = {}): Uint8Array {
  const entries: TensorEntry[] = [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape], offset: 0, byteLength: t.byteLength }));
  let offset = 0;
  for (const e of entries) {
    e.offset = offset;
    offset = align(offset + e.byteLength);
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify({ model, tensors: entries, metadata } satisfies ModelHeader));
  const dataStart = align(12 + headerBytes.length);
  const last = entries[entries.length - 1];
  const out = new Uint8Array(dataStart + (last ? last.offset + last.byteLength : 0));
  out.set(MAGIC, 0);
  out[7] = VERSION;
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  [...tensors.values()].forEach((t, i) => out.set(tensorBytes(t), dataStart + entries[i].offset));
  return out;
}

function tensorBytes(t: Tensor): Uint8Array {
  const v = t.view();
  return new Uint8Array(v.buffer, v.byteOffset, t.byteLength);
}

export function saveModelFile(path: string, model: ModelHeader['model'], tensors: Map<string, Tensor>, metadata: Record<string, unknown> = {}): void {
  writeFileAtomic(path, encodeModelFile(model, tensors, metadata));
}

function fail(where: string, what: string): never {
  throw new LowbitError(`${where}: ${what}. The file is not a valid .lowbit model (truncated or corrupt?); re-export or re-download it.`);
}

/** Parse and validate the header only. */
export function decodeModelHeader(bytes: Uint8Array, where = 'model file'): ModelHeader {
  if (bytes.length < 12) fail(where, `only ${bytes.length} bytes`);
  if (MAGIC.some((b, i) => bytes[i] !== b)) fail(where, 'wrong magic bytes');
  if (bytes[7] !== VERSION) throw new LowbitError(`${where}: format version ${bytes[7]}, this lowbit reads version ${VERSION}; upgrade lowbit`);
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (h > MAX_HEADER || 12 + h > bytes.length) fail(where, `header length ${h} exceeds the file (${bytes.length} bytes)`);
  let header: ModelHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + h))) as ModelHeader;
  } catch {
    fail(where, 'header is not valid JSON');
  }
  if (!header || typeof header !== 'object' || !header.model || typeof header.model.name !== 'string' || !Array.isArray(header.tensors)) {
    fail(where, 'header lacks model or tensors');
  }
  header.metadata ??= {};
  const dataStart = align(12 + h);
  const names = new Set<string>();
  for (const e of header.tensors) {
    if (!e || typeof e.name !== 'string' || names.has(e.name)) fail(where, `bad or duplicate tensor name ${JSON.stringify(e?.name)}`);
    names.add(e.name);
    if (!DTYPES.includes(e.dtype)) fail(where, `tensor ${e.name} has unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || e.shape.length > 8 || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(where, `tensor ${e.name} has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const expected = shapeSize(e.shape) * BYTES_PER_ELEMENT[e.dtype];
    if (e.byteLength !== expected) fail(where, `tensor ${e.name} declares ${e.byteLength} bytes, its shape needs ${expected}`);
    if (!Number.isSafeInteger(e.offset) || e.offset < 0 || e.offset % ALIGN !== 0 || dataStart + e.offset + e.byteLength > bytes.length) {
      fail(where, `tensor ${e.name} lies outside the file (offset ${e.offset}, ${e.byteLength} bytes, file ${bytes.length} bytes)`);
    }
  }
  return header;
}

/** Where the data area of a file with this header starts. */
function dataStartOf(bytes: Uint8Array): number {
  return align(12 + new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true));
}

/** Constants of imported graphs (GraphModule buffers const_*) may hold +-Inf legitimately (clip bounds). */
const isGraphConstant = (name: string) => /(^|\.)const_/.test(name);

export function decodeModelFile(bytes: Uint8Array, where = 'model file'): ModelFile {
  const header = decodeModelHeader(bytes, where);
  const tensors = new Map<string, Tensor>();
  const start = dataStartOf(bytes);
  // NaN/Inf weights are refused here, by tensor name (packed runtime files check theirs by layer: runtime/file.ts).
  const packed = header.model.name === 'lowbit-runtime';
  try {
    for (const e of header.tensors) {
      const t = Tensor.empty(e.shape, e.dtype);
      tensors.set(e.name, t);
      tensorBytes(t).set(bytes.subarray(start + e.offset, start + e.offset + e.byteLength));
      if (e.dtype === 'f32' && !packed && !isGraphConstant(e.name)) checkFinite(t.view() as Float32Array, `${where}: tensor ${e.name}`, 'the file is damaged or was saved from a diverged training; retrain or re-export it');
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { model: header.model, metadata: header.metadata, tensors };
}

export function loadModelFile(path: string): ModelFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new LowbitError(`cannot read model file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path`);
  }
  return decodeModelFile(bytes, path);
}
