// The playground as a plain static folder: index.html, style.css, playground.js (the browser bundle of the
// runtime, built by `npm run build`), kernels.wasm, models/*.lowbit (packed files made by models.ts),
// samples/*.bin (test images to pick), charts/*.svg and results/*.json (the committed comparison results,
// drawn with the report's Vega-Lite specs, rendered to SVG here so that the page needs no script eval), and
// manifest.json, which the page reads. Any static server can serve it; `lowbit serve` uses static.ts.
//
// The page is rendered here with every model's rows already in place, and a model whose weights are missing
// says so in the HTML itself: the page is never blank, even without its script.

import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../data/index.js';
import { LowbitError } from '../errors.js';
import type { CompareResults } from '../quant/compare.js';
import { compareCharts, type VegaLiteSpec } from '../report/charts.js';
import { esc } from '../report/compare-report.js';
import { WEIGHTS_DIR } from '../zoo/index.js';
import { decodeModelHeader } from '../formats/lowbit.js';
import type { Manifest, ManifestChart, ManifestModel } from '../playground/manifest.js';
import { PLAYGROUND_MODELS, VARIANTS, buildVariants, sampleImages, weightsPath, type PlaygroundModelInfo } from './models.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The browser bundle (scripts/build-web.mjs) and the kernels (npm run build:wasm). */
export const BUNDLE = fileURLToPath(new URL('../../web/playground.js', import.meta.url));
export const KERNELS = fileURLToPath(new URL('../../../build/kernels.wasm', import.meta.url));

export interface BuildOptions {
  /** PTQ for every datatype (seconds) instead of a short fine-tuning of ternary and binary. */
  quick?: boolean;
  /** Folder of the zoo weights (default <repo>/models). */
  weightsDir?: string;
  /** Folder of committed comparison results (default <repo>/docs/results). */
  resultsDir?: string;
  /** Which zoo models (default: all of PLAYGROUND_MODELS). */
  models?: readonly PlaygroundModelInfo[];
  log?: (line: string) => void;
}

const CHARTS: { key: 'size' | 'bops' | 'energy'; what: string }[] = [
  { key: 'size', what: 'accuracy against packed model size, Pareto front marked' },
  { key: 'bops', what: 'accuracy against bit-operations' },
  { key: 'energy', what: 'estimated energy per image' },
];

async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Charts of every committed results.json under resultsDir (each subfolder one comparison). */
async function writeCharts(out: string, resultsDir: string): Promise<ManifestChart[]> {
  if (!existsSync(resultsDir)) return [];
  const charts: ManifestChart[] = [];
  // the playground's models first, then the other comparisons
  const order = (n: string) => { const i = PLAYGROUND_MODELS.findIndex((m) => m.id === n); return i < 0 ? PLAYGROUND_MODELS.length : i; };
  for (const name of readdirSync(resultsDir).sort((a, b) => order(a) - order(b) || a.localeCompare(b))) {
    const file = join(resultsDir, name, 'results.json');
    if (!/^[\w.-]+$/.test(name) || !existsSync(file)) continue;
    let results: CompareResults;
    try {
      results = JSON.parse(readFileSync(file, 'utf8')) as CompareResults;
      if (!Array.isArray(results.rows)) throw new Error('no rows');
    } catch (e) {
      throw new LowbitError(`${file}: not a lowbit compare results file (${(e as Error).message}); regenerate it with lowbit compare`);
    }
    copyFileSync(file, join(out, 'results', `${name}.json`));
    const specs = compareCharts(results.rows);
    for (const c of CHARTS) {
      const svg = `charts/${name}-${c.key}.svg`;
      writeFileSync(join(out, svg), await renderSvg(specs[c.key]));
      charts.push({ results: name, heading: `${results.model} on ${results.dataset}`, title: c.what, file: svg });
    }
  }
  return charts;
}

function missingMessage(m: PlaygroundModelInfo, weights: string): string {
  return `The ${m.title} model is missing: its weights ${weights} did not exist when this playground was built. ` +
    `Train them with \`${m.train}\`, then run \`lowbit serve\` (or \`lowbit serve --build DIR\`) again.`;
}

async function buildModel(out: string, m: PlaygroundModelInfo, o: BuildOptions): Promise<ManifestModel> {
  const weights = weightsPath(m, o.weightsDir ?? WEIGHTS_DIR);
  const base = { id: m.id, title: m.title, dataset: m.dataset, input: m.input };
  if (!existsSync(weights)) return { ...base, missing: missingMessage(m, o.weightsDir ? weights : `models/${m.id}.lowbit`) };
  const built = await buildVariants(m, { quick: o.quick, weightsDir: o.weightsDir, log: o.log });
  const variants = built.map((v) => {
    const file = `models/${m.id}-${v.key}.lowbit`;
    copyFileSync(v.path, join(out, file));
    return { key: v.key, label: v.label, spec: v.spec, mode: v.mode, file, bytes: statSync(v.path).size, accuracy: v.accuracy };
  });
  // classes, input shape and preprocessing as the trained weights record them
  const header = decodeModelHeader(readFileSync(weights), weights);
  const config = header.model.config as { inChannels: number; inputSize: number };
  const meta = header.metadata as { classes?: string[]; preprocess?: { mean: number[]; std: number[] } };
  const inputShape = [1, config.inChannels, config.inputSize, config.inputSize];
  const model: ManifestModel = { ...base, classes: meta.classes, preprocess: meta.preprocess && { mean: meta.preprocess.mean, std: meta.preprocess.std }, inputShape, variants };
  if (m.input === 'pick') {
    const s = await sampleImages(m, 2);
    writeFileSync(join(out, 'samples', `${m.id}.bin`), s.images);
    model.samples = { file: `samples/${m.id}.bin`, count: s.labels.length, labels: s.labels };
    model.classes ??= s.classes;
  }
  return model;
}

function modelSection(m: ManifestModel): string {
  if (m.missing) {
    return `<section class="model missing" data-model="${esc(m.id)}" data-state="missing">
  <h2>${esc(m.title)}</h2>
  <p class="missing-note">${esc(m.missing)}</p>
</section>`;
  }
  const classes = m.classes ?? [];
  const bars = classes.map((c) => `<span class="bar"><i></i><b>${esc(c.length > 5 ? c.slice(0, 4) : c)}</b></span>`).join('');
  const rows = (m.variants ?? []).map((v) => `<tr data-variant="${esc(v.key)}" data-state="loading">
      <th scope="row">${esc(v.label)}<small>${esc(v.spec)} · ${v.mode === 'qat' ? 'short QAT' : 'PTQ'} · ${(v.bytes / 1024).toFixed(1)} KiB · test accuracy ${(100 * v.accuracy).toFixed(2)}%</small></th>
      <td class="top1">loading…</td><td class="probs">${bars}</td><td class="ms"></td>
    </tr>`).join('\n    ');
  const input = m.input === 'draw'
    ? `<div class="input">
    <canvas class="draw" width="280" height="280" aria-label="draw a digit here"></canvas>
    <div class="side"><p>Draw a digit (0–9) with the mouse, a pen or a finger.</p>
      <p>What the models see (28×28, centred by mass as MNIST):</p><canvas class="preview" width="28" height="28"></canvas>
      <p><button type="button" class="clear">clear</button></p></div>
  </div>`
    : `<div class="input"><div class="samples" aria-label="CIFAR-10 test images"></div><p class="picked-label"></p></div>`;
  return `<section class="model" data-model="${esc(m.id)}" data-state="loading">
  <h2>${esc(m.title)}</h2>
  ${input}
  <table class="predictions">
    <thead><tr><th>datatype</th><th>top-1</th><th>probabilities</th><th>ms / image</th></tr></thead>
    <tbody>
    ${rows}
    </tbody>
  </table>
</section>`;
}

function pageHtml(manifest: Manifest): string {
  const charts = manifest.charts.length === 0
    ? '<p>No committed comparison results were found (docs/results/*/results.json).</p>'
    : [...new Set(manifest.charts.map((c) => c.results))].map((name) => {
      const group = manifest.charts.filter((c) => c.results === name);
      const figures = group.map((c) => `<figure><img src="${esc(c.file)}" alt="${esc(`${c.heading}: ${c.title}`)}"><figcaption>${esc(c.title)}</figcaption></figure>`).join('\n    ');
      return `<h3>${esc(group[0].heading)} (<a href="results/${esc(name)}.json">results.json</a>)</h3>\n  <div class="grid">\n    ${figures}\n  </div>`;
    }).join('\n  ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lowbit playground</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<script type="module" src="playground.js"></script>
</head>
<body>
<header>
  <h1>lowbit playground</h1>
  <p>The same network in ${VARIANTS.map((v) => esc(v.label.split(' (')[0])).join(', ')}: each predicts in this page with lowbit's own
  WebAssembly integer and bitwise kernels (no server-side inference); probabilities and latency side by side.</p>
  <p id="status" data-state="loading">loading…</p>
  <noscript><p>The models run in JavaScript and WebAssembly: enable JavaScript to use the playground.</p></noscript>
</header>
<main>
${manifest.models.map(modelSection).join('\n')}
<section class="charts">
  <h2>Every datatype compared (committed results of <code>lowbit compare</code>)</h2>
  ${charts}
</section>
</main>
<footer>lowbit ${esc(manifest.lowbit)} · built ${esc(manifest.built)}</footer>
</body>
</html>
`;
}

const STYLE = `body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 1rem 2rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
#status { font-weight: 600; } #status[data-state="error"], .missing-note, tr.failed .top1 { color: #b00020; }
.input { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
canvas.draw { width: 280px; height: 280px; border: 2px solid #444; border-radius: 6px; touch-action: none; cursor: crosshair; background: #000; }
canvas.preview { width: 112px; height: 112px; image-rendering: pixelated; border: 1px solid #999; background: #000; }
.side p { margin: .3rem 0; max-width: 22rem; }
.samples { display: grid; grid-template-columns: repeat(10, 64px); gap: 4px; }
.samples canvas { width: 64px; height: 64px; image-rendering: pixelated; cursor: pointer; border: 2px solid transparent; }
.samples canvas.picked { border-color: #d62728; }
table.predictions { border-collapse: collapse; margin-top: 1rem; width: 100%; }
.predictions th, .predictions td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #eee; vertical-align: bottom; }
.predictions th small { display: block; font-weight: normal; color: #666; }
.predictions td.ms { font-variant-numeric: tabular-nums; text-align: right; }
.probs { white-space: nowrap; }
.bar { display: inline-flex; flex-direction: column; justify-content: flex-end; align-items: center; width: 2.2rem; height: 4rem; margin-right: 2px; }
.bar i { display: block; width: 1.4rem; height: 0; background: #4c78a8; }
.bar.top i { background: #d62728; }
.bar b { font-weight: normal; font-size: 11px; color: #555; }
.charts .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; }
footer { margin-top: 2rem; color: #777; font-size: 13px; }
`;

/** The folder a build is written to: a sibling temp folder, renamed over `out` when complete. */
function prepareOutput(out: string): string {
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new LowbitError(`--build ${out} is a file; give a folder`);
    const entries = readdirSync(out);
    if (entries.length > 0 && !entries.includes('manifest.json')) {
      throw new LowbitError(`--build ${out} is a folder that is not empty and not a playground build; give a new or empty folder`);
    }
  }
  mkdirSync(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.partial`);
  rmSync(tmp, { recursive: true, force: true });
  for (const sub of ['models', 'samples', 'charts', 'results']) mkdirSync(join(tmp, sub), { recursive: true });
  return tmp;
}

/** Write the static playground into `outDir` (replacing an earlier build there). Needs init() for the models. */
export async function buildPlayground(outDir: string, o: BuildOptions = {}): Promise<Manifest> {
  for (const [file, fix] of [[BUNDLE, 'npm run build'], [KERNELS, 'npm run build:wasm']]) {
    if (!existsSync(file)) throw new LowbitError(`the playground needs ${file}, which is missing; run \`${fix}\` in the lowbit folder`);
  }
  const out = resolve(outDir);
  const tmp = prepareOutput(out);
  try {
    copyFileSync(BUNDLE, join(tmp, 'playground.js'));
    copyFileSync(KERNELS, join(tmp, 'kernels.wasm'));
    writeFileSync(join(tmp, 'style.css'), STYLE);
    const models: ManifestModel[] = [];
    for (const m of o.models ?? PLAYGROUND_MODELS) models.push(await buildModel(tmp, m, o));
    const charts = await writeCharts(tmp, o.resultsDir ?? join(repoRoot(), 'docs', 'results'));
    const manifest: Manifest = { lowbit: pkg.version, built: new Date().toISOString(), models, charts };
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1));
    writeFileSync(join(tmp, 'index.html'), pageHtml(manifest));
    rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
    return manifest;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
