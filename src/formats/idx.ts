// IDX files (LeCun's MNIST format, also Fashion-MNIST), plain or gzip-compressed.
//
// Layout: two zero bytes, a dtype code, the rank, then `rank` big-endian u32 dimensions, then the elements,
// big-endian, row-major. Every size is checked against what the file can hold before anything is
// allocated: a header that declares more data than the file (or, for gzip, than deflate could expand the
// file to) is a LowbitError, never a RangeError or an out-of-memory crash.

import { readFileSync, statSync } from 'node:fs';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';
import { LowbitError } from '../errors.js';

export type IdxDType = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  dims: number[];
  data: IdxData;
}

const CODES: Record<number, { dtype: IdxDType; bytes: number }> = {
  0x08: { dtype: 'u8', bytes: 1 },
  0x09: { dtype: 'i8', bytes: 1 },
  0x0b: { dtype: 'i16', bytes: 2 },
  0x0c: { dtype: 'i32', bytes: 4 },
  0x0d: { dtype: 'f32', bytes: 4 },
  0x0e: { dtype: 'f64', bytes: 8 },
};
const CODE_OF: Record<IdxDType, number> = { u8: 0x08, i8: 0x09, i16: 0x0b, i32: 0x0c, f32: 0x0d, f64: 0x0e };
const MAX_RANK = 16;
/** Deflate cannot expand data by more than about 1032:1; a larger declared size is a lie. */
const MAX_DEFLATE_RATIO = 1032;
const WHAT_TO_DO = 'use an IDX file (plain or .gz) such as train-images-idx3-ubyte.gz; re-download or reinstall it if it is damaged';

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

interface IdxHeader {
  dtype: IdxDType;
  elementBytes: number;
  dims: number[];
  headerBytes: number;
  /** Total bytes of header + data that the header declares (a float: may exceed 2^53 for lies). */
  totalBytes: number;
}

/** Parse the header from the first bytes of an (uncompressed) IDX file; null if more bytes are needed. */
function parseHeader(bytes: Uint8Array, source: string): IdxHeader | null {
  if (bytes.length < 4) return null;
  const code = CODES[bytes[2]];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !code) {
    const got = Array.from(bytes.subarray(0, 4), (b) => '0x' + b.toString(16).padStart(2, '0')).join(' ');
    throw new LowbitError(
      `${source}: not an IDX file: magic bytes ${got}, expected 0x00 0x00 <dtype 0x08|0x09|0x0b|0x0c|0x0d|0x0e> <rank>; ${WHAT_TO_DO}`,
    );
  }
  const rank = bytes[3];
  if (rank < 1 || rank > MAX_RANK) {
    throw new LowbitError(`${source}: IDX header declares rank ${rank}, expected 1..${MAX_RANK}; ${WHAT_TO_DO}`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  return { dtype: code.dtype, elementBytes: code.bytes, dims, headerBytes, totalBytes: headerBytes + count * code.bytes };
}

function describeDims(h: IdxHeader): string {
  return `${h.dtype} [${h.dims.join(', ')}]`;
}

/**
 * Decompress a gzip IDX file without trusting it: read the header from a prefix, check the declared size
 * against what deflate could produce from this many bytes, then inflate with that size as a hard limit.
 */
function gunzipIdx(bytes: Uint8Array, source: string): { header: IdxHeader; raw: Uint8Array } {
  let header: IdxHeader | null = null;
  for (let prefix = 4096; ; prefix *= 4) {
    const part = bytes.subarray(0, Math.min(prefix, bytes.length));
    let head: Uint8Array;
    try {
      head = gunzipSync(part, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (e) {
      throw gzipError(source, e);
    }
    header = parseHeader(head, source);
    if (header || part.length === bytes.length) break;
  }
  if (!header) {
    throw new LowbitError(`${source}: truncated: the gzip data ends inside the IDX header; ${WHAT_TO_DO}`);
  }
  const limit = Math.min(bytes.length * MAX_DEFLATE_RATIO + 1024, bufferConstants.MAX_LENGTH);
  if (header.totalBytes > limit) {
    throw new LowbitError(
      `${source}: IDX header declares ${describeDims(header)} (${header.totalBytes} bytes), more than a ` +
        `${bytes.length}-byte gzip file can hold; ${WHAT_TO_DO}`,
    );
  }
  let raw: Uint8Array;
  try {
    raw = gunzipSync(bytes, { maxOutputLength: Math.max(header.totalBytes, 1) });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') {
      throw new LowbitError(
        `${source}: holds more data than its IDX header declares (${describeDims(header)}, ${header.totalBytes} bytes); ${WHAT_TO_DO}`,
      );
    }
    throw gzipError(source, e);
  }
  return { header, raw };
}

function gzipError(source: string, e: unknown): LowbitError {
  const why = e instanceof Error ? e.message : String(e);
  return new LowbitError(`${source}: damaged gzip data (${why}); ${WHAT_TO_DO}`);
}

/** Parse an IDX file's bytes (plain or gzip). `source` names the file in error messages. */
export function parseIdx(bytes: Uint8Array, source = 'IDX data'): IdxArray {
  let header: IdxHeader | null;
  let raw: Uint8Array;
  if (isGzip(bytes)) {
    ({ header, raw } = gunzipIdx(bytes, source));
  } else {
    raw = bytes;
    header = parseHeader(bytes, source);
    if (!header) {
      throw new LowbitError(`${source}: truncated: ${bytes.length} bytes is shorter than an IDX header; ${WHAT_TO_DO}`);
    }
  }
  if (raw.length !== header.totalBytes) {
    const what = raw.length < header.totalBytes ? 'truncated' : 'has trailing bytes';
    throw new LowbitError(
      `${source}: ${what}: the header declares ${describeDims(header)} = ${header.totalBytes} bytes, ` +
        `the ${isGzip(bytes) ? 'decompressed ' : ''}file has ${raw.length}; ${WHAT_TO_DO}`,
    );
  }
  const count = (header.totalBytes - header.headerBytes) / header.elementBytes;
  const at = raw.byteOffset + header.headerBytes;
  let data: IdxData;
  switch (header.dtype) {
    case 'u8':
      data = new Uint8Array(raw.buffer, at, count);
      break;
    case 'i8':
      data = new Int8Array(raw.buffer, at, count);
      break;
    default:
      data = readBigEndian(new DataView(raw.buffer, at, count * header.elementBytes), header.dtype, count);
  }
  return { dtype: header.dtype, dims: header.dims, data };
}

function readBigEndian(view: DataView, dtype: IdxDType, n: number): IdxData {
  switch (dtype) {
    case 'i16': {
      const a = new Int16Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getInt16(2 * i, false);
      return a;
    }
    case 'i32': {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getInt32(4 * i, false);
      return a;
    }
    case 'f32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getFloat32(4 * i, false);
      return a;
    }
    case 'f64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getFloat64(8 * i, false);
      return a;
    }
    default:
      throw new Error(`unreachable dtype ${dtype}`);
  }
}

/** Read an IDX file (plain or gzip, detected by its magic bytes). */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    if (!statSync(path).isFile()) throw new LowbitError(`${path}: is not a file; give the path of an IDX file`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof LowbitError) throw e;
    throw new LowbitError(`${path}: cannot read (${(e as Error).message}); check the path`);
  }
  return parseIdx(bytes, path);
}

/** Encode an array as an uncompressed IDX file (big-endian), the inverse of parseIdx. */
export function encodeIdx(arr: IdxArray): Uint8Array {
  const code = CODE_OF[arr.dtype];
  const bytes = CODES[code].bytes;
  const count = arr.dims.reduce((p, d) => p * d, 1);
  if (count !== arr.data.length) throw new RangeError(`encodeIdx: ${arr.data.length} elements do not fill [${arr.dims}]`);
  const head = 4 + 4 * arr.dims.length;
  const out = new Uint8Array(head + count * bytes);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = arr.dims.length;
  arr.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const d = arr.data;
  switch (arr.dtype) {
    case 'u8':
    case 'i8':
      out.set(new Uint8Array(d.buffer, d.byteOffset, count), head);
      break;
    case 'i16':
      for (let i = 0; i < count; i++) view.setInt16(head + 2 * i, d[i], false);
      break;
    case 'i32':
      for (let i = 0; i < count; i++) view.setInt32(head + 4 * i, d[i], false);
      break;
    case 'f32':
      for (let i = 0; i < count; i++) view.setFloat32(head + 4 * i, d[i], false);
      break;
    case 'f64':
      for (let i = 0; i < count; i++) view.setFloat64(head + 8 * i, d[i], false);
      break;
  }
  return out;
}
