// Decoded datasets on disk, so that a second load is a file read instead of 60,000 JPEG decodes.
//
// File layout (.lbds):
//   8 bytes  "LBDATA02" (format magic and version)
//   4 bytes  u32 LE: length of the JSON header in bytes
//   4 bytes  u32 LE: CRC-32 of the JSON header
//   header   JSON (utf-8), padded with spaces so that the sections start at a multiple of 8
//   sections raw bytes (images u8, labels u8 or i32 little-endian), each at an offset given in the header
//            (relative to the start of the sections) and aligned to 8
// The header holds the cache key, the dataset's name, classes and stats, each split's shape, each section's
// byte range and CRC-32. Loading validates all of it and the labels; anything wrong is a LowbitError and the
// caller decodes afresh. Written with writeFileAtomic: the file is whole or absent.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { LowbitError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomic.js';
import type { ChannelStats, Dataset, Split } from './types.js';

const MAGIC = 'LBDATA02';
const MAX_HEADER_BYTES = 1 << 20;
/** Magic, header length, header CRC. */
const PREAMBLE = 16;

interface SectionRef {
  offset: number;
  bytes: number;
  crc32: number;
}

interface SplitHeader {
  count: number;
  channels: number;
  height: number;
  width: number;
  labelType: 'u8' | 'i32';
  images: SectionRef;
  labels: SectionRef;
}

interface CacheHeader {
  format: 'lowbit-dataset';
  key: string;
  name: string;
  source: string;
  classes: string[];
  stats: ChannelStats;
  train: SplitHeader;
  test: SplitHeader;
  sectionBytes: number;
}

const align8 = (n: number) => (n + 7) & ~7;

function bytesOf(a: Uint8Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Write `ds` to `path` under `key` (whole file or nothing). */
export function writeDatasetCache(path: string, key: string, ds: Dataset): void {
  const sections: Uint8Array[] = [];
  let at = 0;
  const add = (a: Uint8Array | Int32Array): SectionRef => {
    const b = bytesOf(a);
    const ref = { offset: at, bytes: b.length, crc32: crc32(b) };
    sections.push(b);
    at = align8(at + b.length);
    return ref;
  };
  const splitHeader = (s: Split): SplitHeader => ({
    count: s.count,
    channels: s.channels,
    height: s.height,
    width: s.width,
    labelType: s.labels instanceof Int32Array ? 'i32' : 'u8',
    images: add(s.images),
    labels: add(s.labels),
  });
  const train = splitHeader(ds.train), test = splitHeader(ds.test);
  const header: CacheHeader = {
    format: 'lowbit-dataset', key, name: ds.name, source: ds.source, classes: ds.classes, stats: ds.stats,
    train, test, sectionBytes: at,
  };
  let json = Buffer.from(JSON.stringify(header));
  const start = align8(PREAMBLE + json.length);
  json = Buffer.concat([json, Buffer.alloc(start - PREAMBLE - json.length, 0x20)]);
  const file = new Uint8Array(start + at);
  file.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(file.buffer).setUint32(8, json.length, true);
  new DataView(file.buffer).setUint32(12, crc32(json), true);
  file.set(json, PREAMBLE);
  let off = start;
  for (const s of sections) {
    file.set(s, off);
    off = start + align8(off - start + s.length);
  }
  writeFileAtomic(path, file);
}

function bad(path: string, what: string): LowbitError {
  return new LowbitError(`${path}: damaged dataset cache (${what}); delete it and the dataset will be decoded again`);
}

function isCount(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/**
 * Read a cache file. Returns null when it does not exist or was written for another key (other source
 * file or settings); throws a LowbitError when it is damaged.
 */
export function readDatasetCache(path: string, key: string): Dataset | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(PREAMBLE);
    if (size < PREAMBLE || readSync(fd, head, 0, PREAMBLE, 0) !== PREAMBLE || head.toString('latin1', 0, 8) !== MAGIC) {
      throw bad(path, 'wrong magic bytes or too short');
    }
    const jsonBytes = head.readUInt32LE(8);
    if (jsonBytes > MAX_HEADER_BYTES || PREAMBLE + jsonBytes > size) throw bad(path, `header of ${jsonBytes} bytes`);
    const json = Buffer.alloc(jsonBytes);
    if (readSync(fd, json, 0, jsonBytes, PREAMBLE) !== jsonBytes || crc32(json) !== head.readUInt32LE(12)) {
      throw bad(path, 'header checksum mismatch');
    }
    let h: CacheHeader;
    try {
      h = JSON.parse(json.toString('utf8')) as CacheHeader;
    } catch {
      throw bad(path, 'header is not JSON');
    }
    if (h?.format !== 'lowbit-dataset') throw bad(path, 'not a lowbit dataset cache');
    if (h.key !== key) return null;
    const start = align8(PREAMBLE + jsonBytes);
    if (!isCount(h.sectionBytes) || start + h.sectionBytes !== size) {
      throw bad(path, `file is ${size} bytes, header says ${start} + ${h.sectionBytes}`);
    }
    if (!Array.isArray(h.classes) || h.classes.length === 0 || !h.classes.every((c) => typeof c === 'string')) {
      throw bad(path, 'classes');
    }
    checkSplit(path, h.train, h.sectionBytes);
    checkSplit(path, h.test, h.sectionBytes);
    const channels = h.train.channels;
    const numbers = (a: unknown) => Array.isArray(a) && a.length === channels && a.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!h.stats || !numbers(h.stats.mean) || !numbers(h.stats.std)) throw bad(path, 'statistics');
    // Sizes are consistent with the file: now read it whole, once, and slice the sections out of it.
    const data = new Uint8Array(h.sectionBytes);
    for (let got = 0; got < data.length; ) {
      const r = readSync(fd, data, got, data.length - got, start + got);
      if (r === 0) throw bad(path, 'file shrank while reading');
      got += r;
    }
    const classes = h.classes.length;
    return {
      name: String(h.name),
      classes: h.classes,
      source: String(h.source),
      stats: h.stats,
      train: splitOf(path, h.train, data, classes),
      test: splitOf(path, h.test, data, classes),
      fromCache: true,
    };
  } finally {
    closeSync(fd);
  }
}

function checkSplit(path: string, s: SplitHeader, sectionBytes: number): void {
  if (!s || !isCount(s.count) || !isCount(s.channels, 4) || !isCount(s.height, 1 << 16) || !isCount(s.width, 1 << 16)) {
    throw bad(path, 'split shape');
  }
  const labelBytes = s.labelType === 'i32' ? 4 : s.labelType === 'u8' ? 1 : NaN;
  const want: [SectionRef, number][] = [
    [s.images, s.count * s.channels * s.height * s.width],
    [s.labels, s.count * labelBytes],
  ];
  for (const [ref, bytes] of want) {
    if (!ref || !isCount(ref.offset) || ref.offset % 8 !== 0 || ref.bytes !== bytes || ref.offset + bytes > sectionBytes) {
      throw bad(path, 'section sizes disagree with the split shape');
    }
  }
}

function splitOf(path: string, s: SplitHeader, data: Uint8Array, classes: number): Split {
  const section = (ref: SectionRef) => {
    const b = data.subarray(ref.offset, ref.offset + ref.bytes);
    if (crc32(b) !== ref.crc32) throw bad(path, 'checksum mismatch');
    return b;
  };
  const images = section(s.images);
  const lb = section(s.labels);
  const labels = s.labelType === 'i32' ? new Int32Array(lb.buffer, lb.byteOffset, s.count) : lb;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= classes) throw bad(path, `label ${labels[i]} of image ${i}`);
  }
  return { images, labels, count: s.count, channels: s.channels, height: s.height, width: s.width };
}
