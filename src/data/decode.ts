// Decoding many image files into one CHW u8 array, on worker threads when there are enough of them to pay
// for starting the workers (measured: ~0.25 ms per 32x32 JPEG on one core, so 60,000 images take ~15 s on
// one thread and about half that on two).

import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LowbitError } from '../errors.js';
import { readImageFile, type ImageTarget } from '../formats/image.js';
import type { ProgressSink } from './progress.js';

export interface DecodeOptions {
  /** Worker threads (0 = decode on the calling thread). Default: up to 2 when there are >= 2000 files. */
  workers?: number;
  progress?: ProgressSink;
}

/** Work is handed out in chunks of this many images, so fast workers take more. */
const CHUNK = 500;
const WORKER_MIN_FILES = 2000;
const workerUrl = new URL('./decode-worker.js', import.meta.url);

export async function decodeImageFiles(files: string[], target: ImageTarget, opts: DecodeOptions = {}): Promise<Uint8Array> {
  const n = files.length;
  const size = target.channels * target.height * target.width;
  const workers = Math.min(
    opts.workers ?? (n >= WORKER_MIN_FILES ? Math.min(2, availableParallelism()) : 0),
    Math.ceil(n / CHUNK),
  );
  const progress = opts.progress;
  try {
    if (workers <= 0 || !existsSync(fileURLToPath(workerUrl))) {
      const out = new Uint8Array(n * size);
      for (let i = 0; i < n; i++) {
        readImageFile(files[i], target, out, i * size);
        if ((i + 1) % CHUNK === 0 || i + 1 === n) progress?.update({ phase: 'decode', done: i + 1, total: n, unit: 'images' });
      }
      return out;
    }
    return await decodeOnWorkers(files, target, workers, progress);
  } finally {
    progress?.stop();
  }
}

interface WorkerReply {
  done?: number;
  error?: string;
  expected?: boolean;
}

function decodeOnWorkers(files: string[], target: ImageTarget, count: number, progress?: ProgressSink): Promise<Uint8Array> {
  const n = files.length;
  const size = target.channels * target.height * target.width;
  const buffer = new SharedArrayBuffer(n * size);
  return new Promise((resolve, reject) => {
    const pool: Worker[] = [];
    let next = 0, done = 0, running = 0, settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      for (const w of pool) void w.terminate();
      if (err) reject(err);
      else resolve(new Uint8Array(buffer));
    };
    const feed = (w: Worker) => {
      if (next >= n) {
        if (--running === 0) finish();
        return;
      }
      const begin = next;
      next = Math.min(n, next + CHUNK);
      w.postMessage({ begin, end: next });
    };
    for (let k = 0; k < count; k++) {
      const w = new Worker(workerUrl, { workerData: { files, target, buffer } });
      pool.push(w);
      running++;
      w.on('message', (m: WorkerReply) => {
        if (m.error !== undefined) {
          finish(m.expected ? new LowbitError(m.error) : new Error(m.error));
          return;
        }
        done += m.done ?? 0;
        progress?.update({ phase: 'decode', done, total: n, unit: 'images' });
        feed(w);
      });
      w.on('error', (e) => finish(e));
      w.on('exit', (code) => {
        if (!settled) finish(new Error(`image decoding worker exited with code ${code}`));
      });
      feed(w);
    }
  });
}
