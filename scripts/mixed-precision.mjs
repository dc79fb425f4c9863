#!/usr/bin/env node
// Mixed precision against uniform weight widths, all by PTQ with int8 activations (the settings of
// `lowbit quantize`: 512 calibration images, min-max, bias correction), on the whole test set.
//   node scripts/mixed-precision.mjs <zoo:model|file> <dataset> <out-dir> [seed]
// Writes <out-dir>/mixed-precision.json: uniform w=int<b>,a=int8 rows (b = 2..8) and greedy / lin rows at
// budgets from 0.06 to 0.26 of the FP32 size and at each uniform row's size; and prints the targets of issue 9.
// Resumable: every row is also written to <out-dir>/mixed-precision.partial.json as it ends, and a rerun with the same
// model weights and seed skips the rows found there (the file is removed when the study is complete).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, shutdown } from '../dist/src/index.js';
import { loadModel } from '../dist/src/zoo/index.js';
import { loadDataset, batches } from '../dist/src/data/index.js';
import { subsetSplit, costOf, weightsDigest } from '../dist/src/quant/compare.js';
import { quantizePostTraining } from '../dist/src/quant/ptq.js';
import { disposeQuantized } from '../dist/src/quant/quantized.js';
import { allocateMixedPrecision } from '../dist/src/quant/mixed-precision.js';
import { evaluate } from '../dist/src/train/trainer.js';

const [model, dataName, outDir, seedText] = process.argv.slice(2);
if (!model || !dataName || !outDir) { console.error('usage: node scripts/mixed-precision.mjs <model> <dataset> <out-dir> [seed]'); process.exit(2); }
const seed = Number(seedText ?? 0);
const started = Date.now();
await init({});
const source = loadModel(model);
const ds = await loadDataset(dataName);
const normalize = source.metadata.preprocess ?? ds.stats;
const calibSplit = subsetSplit(ds.train, 512, seed + 3);
const calibration = () => batches(calibSplit, { batchSize: 256, normalize });
const test = () => batches(ds.test, { batchSize: 500, normalize });
const fp = evaluate(source.model, test());
console.error(`fp32 ${(100 * fp.accuracy).toFixed(2)}%`);
const rows = [];
let fp32Bytes = 0;
const partialPath = join(outDir, 'mixed-precision.partial.json');
const digest = weightsDigest(source.model);
let earlierSeconds = 0;
const earlier = [];
if (existsSync(partialPath)) {
  const p = JSON.parse(readFileSync(partialPath, 'utf8'));
  if (p.weights_sha256 === digest && p.seed === seed && p.dataset === ds.name) {
    earlier.push(...p.rows);
    earlierSeconds = p.seconds;
    fp32Bytes = p.fp32_bytes;
    console.error(`resuming: ${earlier.length} rows from ${partialPath}`);
  }
}
function savePartial() {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${partialPath}.tmp`, JSON.stringify({ weights_sha256: digest, seed, dataset: ds.name, fp32_bytes: fp32Bytes, seconds: earlierSeconds + (Date.now() - started) / 1000, rows }, null, 2));
  renameSync(`${partialPath}.tmp`, partialPath);
}
/** A row of an earlier run of the study: uniform rows by spec, allocator rows by budget. */
function done(kind, key) {
  const r = earlier.find((x) => x.kind === kind && (kind === 'uniform' ? x.spec === key : x.budget === key));
  if (r) {
    rows.push(r);
    console.error(`${kind.padEnd(8)} ${String(r.budget ?? '').padEnd(8)} ${r.error ?? `${(100 * r.accuracy).toFixed(2)}%  ${r.bytes} B`}  (earlier run)`);
  }
  return r;
}
function run(kind, spec, extra = {}) {
  const q = quantizePostTraining(source, { spec, calibration: calibration(), seed, firstLast: 'quantize' });
  try {
    const acc = evaluate(q.model, test()).accuracy;
    const cost = costOf(source, q.info, q);
    fp32Bytes ||= costOf(source, q.info, null).bytes;
    // The fraction of the float model's size, as the allocators' budgets are (the quantized model's own fp32Bytes
    // lacks the folded batch norms), rounded down so that a budget at a uniform row's fraction never exceeds its bytes.
    const fraction = Math.floor((cost.bytes / fp32Bytes) * 1e6) / 1e6;
    const row = { kind, spec, accuracy: acc, bytes: cost.bytes, fraction, ...extra };
    rows.push(row);
    savePartial();
    console.error(`${kind.padEnd(8)} ${String(extra.budget ?? '').padEnd(8)} ${(100 * acc).toFixed(2)}%  ${cost.bytes} B  ${spec}`);
    return row;
  } finally {
    disposeQuantized(q);
  }
}
for (let b = 2; b <= 8; b++) done('uniform', `w=int${b},a=int8`) ?? run('uniform', `w=int${b},a=int8`);
const uniformFractions = rows.map((r) => r.fraction);
const grid = [0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.24, 0.26];
const budgets = [...new Set([...grid, ...uniformFractions.filter((f) => f >= 0.06 && f <= 0.27)])].sort((a, b) => a - b);
for (const allocator of ['greedy', 'lin']) {
  for (const budget of budgets) {
    if (done(allocator, budget)) continue;
    try {
      const a = allocateMixedPrecision(source, calibration, { budget, allocator, seed });
      run(allocator, a.spec, { budget, mean_weight_bits: a.mean_weight_bits, kappa: a.kappa });
    } catch (e) {
      console.error(`${allocator} ${budget}: ${e.message}`);
      rows.push({ kind: allocator, budget, error: e.message }); // e.g. below the smallest allocation
      savePartial();
    }
  }
}
const uni = (b) => rows.find((r) => r.spec === `w=int${b},a=int8`);
const targets = {};
for (const allocator of ['greedy', 'lin']) {
  const mine = rows.filter((r) => r.kind === allocator);
  const atInt4 = mine.find((r) => Math.abs(r.budget - uni(4).fraction) < 1e-9);
  const matching = mine.filter((r) => r.accuracy >= uni(8).accuracy).sort((a, b) => a.bytes - b.bytes)[0];
  targets[allocator] = {
    at_int4_size: atInt4 && { mixed: atInt4.accuracy, uniform_int4: uni(4).accuracy, mixed_bytes: atInt4.bytes, int4_bytes: uni(4).bytes, more_accurate: atInt4.accuracy > uni(4).accuracy },
    at_int8_accuracy: matching
      ? { mixed_bytes: matching.bytes, int8_bytes: uni(8).bytes, smaller_by: +(1 - matching.bytes / uni(8).bytes).toFixed(4), mixed_accuracy: matching.accuracy, int8_accuracy: uni(8).accuracy }
      : { none_of_the_budgets_reached_int8_accuracy: uni(8).accuracy },
  };
}
const seconds = earlierSeconds + (Date.now() - started) / 1000;
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'mixed-precision.json'), JSON.stringify({
  command: `node scripts/mixed-precision.mjs ${process.argv.slice(2).join(' ')}`, model, weights_sha256: digest, dataset: ds.name, seed, seconds, float_accuracy: fp.accuracy, test_samples: fp.samples, targets, rows,
}, null, 2) + '\n');
rmSync(partialPath, { force: true });
console.log(JSON.stringify(targets, null, 2));
console.error(`${seconds.toFixed(0)} s`);
source.model.dispose();
await shutdown();
