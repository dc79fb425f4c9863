// `lowbit compare`: run every technique on a model and a dataset (src/quant/compare.ts) and present the
// results: a table on stdout, DIR/results.json and DIR/report.html (both rewritten atomically after every row).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { loadDataset } from '../data/index.js';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { loadModel } from '../zoo/index.js';
import { isQuantizedModelFile } from '../quant/load.js';
import { HOROWITZ_CITATION } from '../quant/cost.js';
import { DEFAULT_SPECS, compareSettings, describeSpec, runCompare, type CompareResults, type CompareRow, type RowDescription } from '../quant/compare.js';
import type { CalibrationMethod } from '../quant/observers.js';
import type { FirstLastPolicy } from '../quant/conventions.js';
import type { LayerInfo } from '../quant/graph.js';
import type { QuantizedModel } from '../quant/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import { compileModel, compileQuantized } from '../runtime/index.js';
import type { LoadedModel } from '../zoo/index.js';

/** Latency per image on the integer runtime: median of 25 batch-1 runs after 5 warm-up runs. */
export function runtimeLatency(source: Pick<LoadedModel, 'model'>): (q: QuantizedModel | null, image: Tensor) => { msPerImage: number; kernels: string } {
  return (q, image) => {
    const plan = q ? compileQuantized(q) : compileModel(source.model, [], [1, ...image.shape.slice(1)]);
    try {
      for (let i = 0; i < 5; i++) plan.run(image).dispose();
      const times: number[] = [];
      for (let i = 0; i < 25; i++) {
        const t0 = performance.now();
        plan.run(image).dispose();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const counts = new Map<string, number>();
      for (const s of plan.summary()) counts.set(s.family, (counts.get(s.family) ?? 0) + 1);
      return { msPerImage: times[times.length >> 1], kernels: [...counts].map(([f, n]) => `${n} ${f}`).join(', ') };
    } finally {
      plan.dispose();
    }
  };
}

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface CompareCliOptions {
  model: string;
  dataset: string;
  specs?: string[];
  quick?: boolean;
  seed: number;
  resume?: boolean;
  out: string;
  epochs?: number;
  scratchEpochs?: number;
  calibSamples?: number;
  method?: CalibrationMethod;
  firstLast?: FirstLastPolicy;
}

function pct(v: number | null, sign = false): string {
  if (v === null) return '-';
  const s = (100 * v).toFixed(2);
  return sign && v >= 0 ? `+${s}` : s;
}

function bytesText(b: number | null): string {
  if (b === null) return '-';
  return b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(2)} MB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} B`;
}

function countText(n: number | null): string {
  if (n === null) return '-';
  return n >= 1e12 ? `${(n / 1e12).toFixed(2)} T` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} K`;
}

function bitsText(b: number | null): string {
  return b === null ? '-' : b === 32 ? 'fp32' : String(b);
}

/** Row descriptions (how it ran, notes, MAC area) recomputed from the specs, so resumed rows get them too. */
export function describeRows(rows: readonly CompareRow[], layers: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): Map<string, RowDescription> {
  const out = new Map<string, RowDescription>();
  for (const r of rows) {
    try {
      out.set(r.spec, describeSpec(r.spec, layers, firstLast));
    } catch {
      // a row whose spec cannot be described keeps its error text
    }
  }
  return out;
}

const HEAD = ['spec', 'how', 'top-1 %', 'vs FP32', 'W bits', 'A bits', 'packed size', 'compr.', 'BOPs', 'energy uJ', 'MAC um^2', 'ms/img', 'kernels', 'time s'];

function cells(r: CompareRow, d: RowDescription | undefined): string[] {
  return [
    r.spec, d?.how ?? '-', pct(r.accuracy), pct(r.delta, true), bitsText(r.weight_bits), bitsText(r.act_bits), bytesText(r.bytes),
    r.compression === null ? '-' : `${r.compression.toFixed(1)}x`, countText(r.bops), r.energy_uj === null ? '-' : r.energy_uj.toFixed(3),
    d ? d.macArea.toFixed(0) : '-', r.latency_ms === null ? '-' : r.latency_ms.toFixed(3), r.kernels ?? '-', r.seconds.toFixed(1),
  ];
}

/** The table printed on stdout. */
export function compareTable(results: CompareResults, layers: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): string {
  const desc = describeRows(results.rows, layers, firstLast);
  const table = new Table({ head: [...HEAD, 'note'], style: { head: [], border: [] } });
  for (const r of results.rows) {
    const d = desc.get(r.spec);
    table.push([...cells(r, d), r.error ? `FAILED: ${r.error}` : d?.note ?? '']);
  }
  return `${results.model} on ${results.dataset}, seed ${results.seed}, ${results.seconds} s\n${table.toString()}\n` +
    `energy and MAC area: ${HOROWITZ_CITATION}, see docs/cost-model.md; ms/img: one image (batch 1) on lowbit's runtime, ` +
    `with the kernels named (int8, binary XNOR-popcount, float for layers whose datatype has no integer kernel)\n`;
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The self-contained HTML report: the table, the command, seed, machine and versions. */
export function compareHtml(results: CompareResults, layers: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): string {
  const desc = describeRows(results.rows, layers, firstLast);
  const m = results.machine as Record<string, unknown>;
  const rows = results.rows.map((r) => {
    const d = desc.get(r.spec);
    const tds = cells(r, d).map((c, i) => `<td${i >= 2 ? ' class="num"' : ''}>${esc(c)}</td>`).join('');
    const note = r.error ? `<td class="error">failed: ${esc(r.error)}</td>` : `<td>${esc(d?.note ?? '')}</td>`;
    return `<tr${r.error ? ' class="failed"' : ''}>${tds}${note}</tr>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lowbit compare: ${esc(results.model)} on ${esc(results.dataset)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fff3f3; }
td.error { color: #a00; }
code { background: #f3f3f3; padding: 0 0.25em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; }
</style>
</head>
<body>
<!-- Charts (accuracy against size, energy and BOPs) come with issue 8 and a charting library; this page has the table only. -->
<h1>lowbit compare: ${esc(results.model)} on ${esc(results.dataset)}</h1>
<dl>
<dt>command</dt><dd><code>${esc(results.command)}</code></dd>
<dt>seed</dt><dd>${esc(results.seed)}</dd>
<dt>wall time</dt><dd>${esc(results.seconds)} s</dd>
<dt>machine</dt><dd>${esc(m.cpu)}, ${esc(m.cores)} cores, ${esc(m.memory_gb)} GB, ${esc(m.platform)} (${esc(m.host)})</dd>
<dt>versions</dt><dd>lowbit ${esc(pkg.version)}, Node.js ${esc(m.node)}, ${esc(m.backend)} kernels x${esc(m.threads)} threads</dd>
</dl>
<table>
<thead><tr>${[...HEAD, 'note'].map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p><b>how</b>: PTQ = post-training quantization (batch norm folded, activation ranges calibrated, bias corrected); QAT =
quantization-aware fine-tuning of the float model; QAT from scratch where the paper trains from scratch (Gupta et al. 2015).
<b>vs FP32</b>: accuracy difference in percentage points. <b>packed size</b>: codes at their bit width, plus scales,
codebooks, biases and the layers kept in float. <b>BOPs</b>: MACs x weight bits x activation bits.
<b>energy</b> per image and the area of one multiply-accumulate unit: estimates from ${esc(HOROWITZ_CITATION)}, with the
rules of docs/cost-model.md. <b>ms/img</b>: median time of one image (batch 1) on lowbit's runtime in WebAssembly;
<b>kernels</b> counts the layers each kernel family ran: int8 (integer codes, int32 accumulation), binary
(XNOR-popcount) and float (fp32 layers and datatypes without an integer kernel, run as the simulation).</p>
</body>
</html>
`;
}

export async function runCompareCli(o: CompareCliOptions, argv: string[], log: (s: string) => void, print: (s: string) => void): Promise<CompareResults> {
  if (!(o.model.startsWith('zoo:') || o.model.endsWith('.lowbit'))) {
    throw new UsageError(`--model ${o.model}: give a .lowbit file or zoo:<name> (e.g. zoo:lenet5-mnist)`);
  }
  if (!o.model.startsWith('zoo:') && isQuantizedModelFile(o.model)) {
    throw new UsageError(`--model ${o.model} is already quantized; give the float model it was made from`);
  }
  const source = loadModel(o.model);
  try {
    const ds = await loadDataset(o.dataset);
    const pre = source.metadata.preprocess as { mean: number[]; std: number[] } | undefined;
    const settings = compareSettings(!!o.quick, {
      epochs: o.epochs, scratchEpochs: o.scratchEpochs, calibSamples: o.calibSamples, method: o.method, firstLast: o.firstLast,
    });
    const specs = o.specs ?? [...DEFAULT_SPECS];
    log(`comparing ${specs.length} datatypes on ${o.model} (${source.name}) with ${ds.name}${o.quick ? ' (--quick: a subset and one short epoch)' : ''}; writing ${o.out}`);
    const reportPath = join(o.out, 'report.html');
    let layers: readonly LayerInfo[] = [];
    const results = runCompare({
      source, modelName: o.model, dataset: ds, specs, quick: !!o.quick, seed: o.seed, outDir: o.out, resume: o.resume,
      command: `lowbit ${argv.join(' ')}`, settings, normalize: pre ? { mean: pre.mean, std: pre.std } : ds.stats, log,
      progress: !!process.stderr.isTTY,
      latency: runtimeLatency(source),
      onWrite: (r, l) => {
        layers = l;
        writeFileAtomic(reportPath, compareHtml(r, l, settings.firstLast));
      },
    });
    print(compareTable(results, layers, settings.firstLast));
    return results;
  } finally {
    source.model.dispose();
  }
}
