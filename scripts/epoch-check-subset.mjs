// Accuracy of models on the full test split and on the 1,000 test images that `lowbit compare` uses for its
// per-epoch QAT checks (src/quant/compare.ts epochCheckSplit, of the whole test split as a full comparison has it).
// Usage: node scripts/epoch-check-subset.mjs <dataset> <seed> <model>...   (after npm run build:ts)
const dist = new URL('../dist/src/', import.meta.url).href;
const { init, shutdown } = await import(dist + 'tensor/backend.js');
const { loadDataset, batches } = await import(dist + 'data/index.js');
const { evaluate } = await import(dist + 'train/trainer.js');
const { epochCheckSplit } = await import(dist + 'quant/compare.js');
const { loadAnyModel } = await import(dist + 'quant/load.js');
const [dataset, seedArg, ...models] = process.argv.slice(2);
if (!dataset || !models.length) {
  console.error('usage: node scripts/epoch-check-subset.mjs <dataset> <seed> <model>...');
  process.exit(2);
}
await init({ threads: 2 });
const ds = await loadDataset(dataset);
const seed = Number(seedArg);
const test = ds.test; // a full comparison tests on all of it
const checks = epochCheckSplit(test, seed);
for (const m of models) {
  const { model, metadata } = loadAnyModel(m);
  const normalize = metadata.preprocess ?? ds.stats;
  const full = evaluate(model, batches(test, { batchSize: 500, normalize }));
  const sub = evaluate(model, batches(checks, { batchSize: 500, normalize }));
  console.log(`${m}: ${(100 * full.accuracy).toFixed(2)}% on ${full.samples} images, ${(100 * sub.accuracy).toFixed(2)}% on the ${sub.samples} per-epoch check images`);
}
await shutdown();
