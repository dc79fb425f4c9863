// CIFAR-10 binary batches, as released by Krizhevsky (cifar-10-binary.tar.gz): data_batch_1.bin ..
// data_batch_5.bin (10,000 images each) and test_batch.bin. Each record is 1 label byte followed by the
// 32x32 image as 1024 red, 1024 green, 1024 blue bytes (CHW, row-major): 3073 bytes, no header.

import { existsSync, openSync, readFileSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LowbitError } from '../errors.js';

export const CIFAR10_CLASSES = [
  'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck',
] as const;
export const CIFAR_IMAGE_BYTES = 3 * 32 * 32;
export const CIFAR_RECORD_BYTES = 1 + CIFAR_IMAGE_BYTES;
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';

/** Images as N*3*32*32 u8 (CHW per image) and labels as N u8. */
export interface CifarImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

const WHAT_TO_DO = 'use the official CIFAR-10 binary version (cifar-10-binary.tar.gz) or an image folder';

function checkLength(bytes: number, source: string): number {
  if (bytes === 0 || bytes % CIFAR_RECORD_BYTES !== 0) {
    throw new LowbitError(
      `${source}: ${bytes} bytes is not a whole number of CIFAR-10 records (${CIFAR_RECORD_BYTES} bytes each: ` +
        `1 label + 3x32x32 pixels); the file is truncated or not a CIFAR-10 batch; ${WHAT_TO_DO}`,
    );
  }
  return bytes / CIFAR_RECORD_BYTES;
}

/** Split records into `out` at record `at` (images and labels), validating every label. */
function unpackRecords(bytes: Uint8Array, source: string, out: CifarImages, at: number, numClasses: number): void {
  const n = bytes.length / CIFAR_RECORD_BYTES;
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD_BYTES;
    const label = bytes[r];
    if (label >= numClasses) {
      throw new LowbitError(
        `${source}: record ${i} has label ${label}, expected 0..${numClasses - 1}; the file is damaged or not a CIFAR-10 batch; ${WHAT_TO_DO}`,
      );
    }
    out.labels[at + i] = label;
    out.images.set(bytes.subarray(r + 1, r + CIFAR_RECORD_BYTES), (at + i) * CIFAR_IMAGE_BYTES);
  }
}

/** Parse one batch held in memory. */
export function parseCifarBatch(bytes: Uint8Array, source = 'CIFAR-10 batch', numClasses = 10): CifarImages {
  const count = checkLength(bytes.length, source);
  const out = { images: new Uint8Array(count * CIFAR_IMAGE_BYTES), labels: new Uint8Array(count), count };
  unpackRecords(bytes, source, out, 0, numClasses);
  return out;
}

/**
 * Read and concatenate batch files: every file's size is checked first, the output is allocated once,
 * then each file is read in chunks straight into place.
 */
export function readCifarBatches(paths: string[], numClasses = 10): CifarImages {
  const counts = paths.map((p) => {
    let size: number;
    try {
      const st = statSync(p);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch (e) {
      throw new LowbitError(`${p}: cannot read CIFAR-10 batch (${(e as Error).message}); ${WHAT_TO_DO}`);
    }
    return checkLength(size, p);
  });
  const count = counts.reduce((a, b) => a + b, 0);
  const out = { images: new Uint8Array(count * CIFAR_IMAGE_BYTES), labels: new Uint8Array(count), count };
  const chunkRecords = 1024;
  const chunk = new Uint8Array(chunkRecords * CIFAR_RECORD_BYTES);
  let at = 0;
  paths.forEach((p, k) => {
    const fd = openSync(p, 'r');
    try {
      for (let done = 0; done < counts[k]; ) {
        const n = Math.min(chunkRecords, counts[k] - done);
        const want = n * CIFAR_RECORD_BYTES;
        let got = 0;
        while (got < want) {
          const r = readSync(fd, chunk, got, want - got, done * CIFAR_RECORD_BYTES + got);
          if (r === 0) throw new LowbitError(`${p}: the file shrank while it was read; ${WHAT_TO_DO}`);
          got += r;
        }
        unpackRecords(chunk.subarray(0, want), `${p}`, out, at + done, numClasses);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    at += counts[k];
  });
  return out;
}

/** Read one batch file. */
export function readCifarBatch(path: string, numClasses = 10): CifarImages {
  return readCifarBatches([path], numClasses);
}

/** Encode images (N*3072 CHW u8) and labels as one batch file in the official layout. */
export function encodeCifarBatch(images: Uint8Array, labels: ArrayLike<number>): Uint8Array {
  const n = labels.length;
  if (images.length !== n * CIFAR_IMAGE_BYTES) {
    throw new RangeError(`encodeCifarBatch: ${images.length} image bytes for ${n} labels (expected ${n * CIFAR_IMAGE_BYTES})`);
  }
  const out = new Uint8Array(n * CIFAR_RECORD_BYTES);
  for (let i = 0; i < n; i++) {
    out[i * CIFAR_RECORD_BYTES] = labels[i];
    out.set(images.subarray(i * CIFAR_IMAGE_BYTES, (i + 1) * CIFAR_IMAGE_BYTES), i * CIFAR_RECORD_BYTES + 1);
  }
  return out;
}

export interface CifarBatchFiles {
  train: string[];
  test: string;
  /** batches.meta.txt (class names, one a line) when present. */
  meta?: string;
}

/** The official batch files in `dir`, or null if it does not hold them all. */
export function findCifar10Batches(dir: string): CifarBatchFiles | null {
  const train = CIFAR10_TRAIN_FILES.map((f) => join(dir, f));
  const test = join(dir, CIFAR10_TEST_FILE);
  if (!train.every((f) => existsSync(f)) || !existsSync(test)) return null;
  const meta = join(dir, 'batches.meta.txt');
  return { train, test, meta: existsSync(meta) ? meta : undefined };
}

/** Class names from batches.meta.txt (falls back to the standard names when absent or malformed). */
export function readCifar10ClassNames(meta?: string): string[] {
  if (meta && statSync(meta).size < 4096) {
    const names = readFileSync(meta, 'utf8').split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length === 10) return names;
  }
  return [...CIFAR10_CLASSES];
}
