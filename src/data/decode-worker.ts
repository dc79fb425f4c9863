// Worker thread of decode.ts: decodes the image files it is told to ([begin, end) of workerData.files)
// straight into the shared output buffer, and replies with the count done or the error.

import { parentPort, workerData } from 'node:worker_threads';
import { LowbitError } from '../errors.js';
import { readImageFile, type ImageTarget } from '../formats/image.js';

const { files, target, buffer } = workerData as { files: string[]; target: ImageTarget; buffer: SharedArrayBuffer };
const out = new Uint8Array(buffer);
const size = target.channels * target.height * target.width;

parentPort!.on('message', ({ begin, end }: { begin: number; end: number }) => {
  try {
    for (let i = begin; i < end; i++) readImageFile(files[i], target, out, i * size);
    parentPort!.postMessage({ done: end - begin });
  } catch (e) {
    parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e), expected: e instanceof LowbitError });
  }
});
