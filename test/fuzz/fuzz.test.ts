// The fuzz properties of every reader (test/fuzz/readers.ts). In the test suite a bounded run
// (LOWBIT_FUZZ_RUNS cases per reader, default 150); `npm run fuzz` runs 100,000 per reader. Set
// LOWBIT_FUZZ_SEED to replay a run (with LOWBIT_FUZZ_PATH, the failure's path, to replay just that case),
// LOWBIT_FUZZ_ONLY to a part of a reader's name to run one.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { init } from '../../src/index.js';
import { allReaders, property, removeTemporaryFiles, type Reader } from './readers.js';

const RUNS = Number(process.env.LOWBIT_FUZZ_RUNS ?? 150);
const SEED = process.env.LOWBIT_FUZZ_SEED ? Number(process.env.LOWBIT_FUZZ_SEED) : undefined;
const ONLY = process.env.LOWBIT_FUZZ_ONLY?.toLowerCase();
const PATH = process.env.LOWBIT_FUZZ_PATH;

let readers: Reader<unknown>[] = [];
before(async () => {
  await init({ threads: 1 });
  readers = await allReaders();
});
after(() => removeTemporaryFiles());

// One test per reader, named after it, created once the readers exist.
const NAMES = [
  'IDX (plain and gzip)', 'CIFAR-10 binary batch', 'CIFAR-10 batch file', 'JPEG/PNG image', 'image folder dataset',
  '.lowbit model file', '.lowbit quantized model file', 'packed runtime file', 'ONNX model', 'spec language', 'command-line arguments',
];
for (const name of NAMES) {
  if (ONLY && !name.toLowerCase().includes(ONLY)) continue;
  test(`fuzz: ${name} ends in a LowbitError, in time and memory (${RUNS} cases)`, { timeout: 0 }, async (t) => {
    const r = readers.find((x) => x.name === name);
    if (!r) throw new Error(`no reader named ${name}`);
    // The image folder reader writes a folder per case: a tenth of the cases.
    const numRuns = name === 'image folder dataset' ? Math.max(10, Math.ceil(RUNS / 10)) : RUNS;
    for (const v of r.valid) await r.read(v); // the unmutated inputs read (else the mutations test nothing)
    assert.ok(r.valid.length > 0, 'no valid inputs');
    const started = performance.now();
    const out = await fc.check(property(r), { numRuns, seed: SEED, path: PATH, endOnFailure: true });
    t.diagnostic(`${name}: ${out.numRuns} cases, ${out.failed ? 1 : 0} failures, seed ${out.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (out.failed) {
      // The case's description (seed file and mutations), not its bytes; replay with LOWBIT_FUZZ_SEED.
      const c = out.counterexample?.[0];
      const err = out.errorInstance as Error | undefined;
      throw new Error(`${err?.message ?? "failed"}\ncase: ${JSON.stringify(c?.describe)?.slice(0, 2000)}\nseed ${out.seed}, path ${out.counterexamplePath}\n${(err?.cause as Error | undefined)?.stack ?? ''}`);
    }
  });
}
