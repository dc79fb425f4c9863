// Accuracy of models on the full test split and on the 1,000 test images that `lowbit compare` uses for its
// per-epoch QAT checks (src/quant/compare.ts: the test subset of seed+1, then 1,000 of it with seed+4).
// Usage: node scripts/epoch-check-subset.mjs <dataset> <seed> <model>...   (after npm run build:ts)
const dist = new URL('../dist/src/', import.meta.url).href;
const { init, shutdown } = await import(dist + 'tensor/backend.js');
const { loadDataset, batches } = await import(dist + 'data/index.js');
const { evaluate } = await import(dist + 'train/trainer.js');
const { subsetSplit } = await import(dist + 'quant/compare.js');
const { loadAnyModel } = await import(dist + 'quant/load.js');
const [dataset, seedArg, ...models] = process.argv.slice(2);
if (!dataset || !models.length) {
  console.error('usage: node scripts/epoch-check-subset.mjs <dataset> <seed> <model>...');
  process.exit(2);
}
await init({ threads: 2 });
const ds = await loadDataset(dataset);
const seed = Number(seedArg);
const test = subsetSplit(ds.test, ds.test.count, seed + 1);
const checks = subsetSplit(test, Math.min(test.count, 1000), seed + 4);
for (const m of models) {
  const { model, metadata } = loadAnyModel(m);
  const normalize = metadata.preprocess ?? ds.stats;
  const full = evaluate(model, batches(test, { batchSize: 500, normalize }));
  const sub = evaluate(model, batches(checks, { batchSize: 500, normalize }));
  console.log(`${m}: ${(100 * full.accuracy).toFixed(2)}% on ${full.samples} images, ${(100 * sub.accuracy).toFixed(2)}% on the ${sub.samples} per-epoch check images`);
}
await shutdown();
