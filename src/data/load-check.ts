// Hand-run check of the full load path (not part of the test suite, because a first CIFAR-10 decode takes
// tens of seconds): loads each dataset named on the command line twice and prints the times, counts,
// statistics and the time of one epoch of augmented batches.
//
//   node dist/src/data/load-check.js cifar10 mnist fashion-mnist [--workers N] [--no-cache]

import { LowbitError } from '../errors.js';
import { batches, CIFAR_AUGMENT } from './batches.js';
import { loadDataset } from './loaders.js';

const args = process.argv.slice(2);
const names = args.filter((a) => !a.startsWith('--') && !/^\d+$/.test(a));
const wi = args.indexOf('--workers');
const workers = wi >= 0 ? Number(args[wi + 1]) : undefined;
const cache = !args.includes('--no-cache');

const seconds = (t: number) => ((performance.now() - t) / 1000).toFixed(2) + ' s';

try {
  for (const name of names.length ? names : ['mnist', 'fashion-mnist', 'cifar10']) {
    for (const attempt of ['first', 'second']) {
      const t = performance.now();
      const phases = new Map<string, { start: number; end: number }>();
      const ds = await loadDataset(name, {
        workers,
        cache,
        onProgress: (e) => {
          const now = performance.now();
          const p = phases.get(e.phase) ?? { start: now, end: now };
          p.end = now;
          phases.set(e.phase, p);
        },
      });
      // Phases are timed from their first progress report (after the first MiB or chunk) to their last.
      const detail = [...phases].map(([k, p]) => `${k} ~${((p.end - p.start) / 1000).toFixed(1)} s`).join(', ');
      console.log(
        `${name} ${attempt} load: ${seconds(t)}${ds.fromCache ? ' (cache)' : ''}${detail ? ` (${detail})` : ''}; train ${ds.train.count} test ${ds.test.count} ` +
          `${ds.train.channels}x${ds.train.height}x${ds.train.width}; mean ${ds.stats.mean.map((v) => v.toFixed(4))} std ${ds.stats.std.map((v) => v.toFixed(4))}`,
      );
      if (attempt === 'second') {
        const tb = performance.now();
        let n = 0;
        for (const b of batches(ds.train, { batchSize: 128, shuffle: true, seed: 1, epoch: 0, augment: ds.train.channels === 3 ? CIFAR_AUGMENT : undefined, normalize: ds.stats })) {
          n += b.y.size;
          b.x.dispose();
          b.y.dispose();
        }
        console.log(`${name} one epoch of batches (128, shuffled${ds.train.channels === 3 ? ', crop+flip' : ''}): ${n} images in ${seconds(tb)}`);
      }
    }
  }
} catch (e) {
  if (e instanceof LowbitError) {
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
