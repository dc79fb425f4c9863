#!/usr/bin/env node
// Rebuild a comparison report from its results.json: node scripts/report.mjs <results.json> <out.html>
// (after `npx tsc -p .`). The model named in the results is traced for the table's "how" and "MAC area"
// columns when it can be loaded; otherwise those cells are "-" and the charts are the same.

import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../dist/src/formats/atomic.js';
import { compareHtml } from '../dist/src/report/compare-report.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/report.mjs <results.json> <out.html>');
  process.exit(2);
}
const results = JSON.parse(readFileSync(input, 'utf8'));

/** The model's conv and linear layers, from one forward pass of a zero image; undefined if it cannot be loaded. */
async function modelLayers(name) {
  const { init, shutdown, Tensor } = await import('../dist/src/index.js');
  const { loadModel } = await import('../dist/src/zoo/index.js');
  const { traceModel } = await import('../dist/src/quant/graph.js');
  await init();
  try {
    const source = loadModel(name);
    const x = Tensor.zeros([1, source.config.inChannels, source.config.inputSize, source.config.inputSize]);
    try {
      return traceModel(source.model, x).layers;
    } finally {
      x.dispose();
      source.model.dispose();
    }
  } catch (e) {
    console.error(`report: ${name}: ${e.message.replace(/^lowbit: /, '')}; the table's "how" and "MAC area" columns stay empty`);
    return undefined;
  } finally {
    await shutdown();
  }
}

const layers = await modelLayers(results.model);
const html = compareHtml(results, layers);
writeFileAtomic(output, html);
console.log(`${output}: ${(html.length / 1024).toFixed(0)} KB, ${results.rows.length} rows${layers ? '' : ' (without the model\'s layers)'}`);
