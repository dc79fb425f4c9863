// The comparison report: one HTML file that works offline. Vega and Vega-Lite are inlined from node_modules
// (their browser builds), the charts are Vega-Lite specs with their data (charts.ts) in a JSON script block,
// and a few lines of script draw them; then the table, the notes, and what produced the results.
//
// Everything from the results (specs, commands, errors, host names) is escaped: HTML text through esc(),
// the chart JSON with <, > and & as \u escapes so no string can close the script element.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { HOROWITZ_CITATION } from '../quant/cost.js';
import type { CompareResults } from '../quant/compare.js';
import type { FirstLastPolicy } from '../quant/conventions.js';
import type { LayerInfo } from '../quant/graph.js';
import { compareCharts, plottable, type ReportCharts } from './charts.js';
import { HEAD, cells, describeRows } from './format.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export interface ChartLibrary {
  name: string;
  version: string;
  /** The browser build (UMD, defines a global). */
  source: string;
}

let libraries: ChartLibrary[] | null = null;

/** Vega and Vega-Lite's minified browser builds, read once from node_modules. */
export function chartLibraries(): ChartLibrary[] {
  if (libraries) return libraries;
  const require = createRequire(import.meta.url);
  const load = (name: string, file: string): ChartLibrary => {
    // The packages' exports map hides build/ and package.json; both sit beside the resolved entry point.
    const build = dirname(require.resolve(name));
    const version = (JSON.parse(readFileSync(join(build, '..', 'package.json'), 'utf8')) as { version: string }).version;
    return { name, version, source: readFileSync(join(build, file), 'utf8') };
  };
  libraries = [load('vega', 'vega.min.js'), load('vega-lite', 'vega-lite.min.js')];
  return libraries;
}

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that can sit inside a <script> element: nothing in it can end the element or open a comment. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A library's source inside a <script> element: "</script" (possible in JS only inside strings and regexes,
 * where "<\/" means the same) cannot end the element, and the source-map comment, whose map is not inlined, goes.
 */
function scriptSource(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n');
}

const DRAW = `(function () {
  var charts = JSON.parse(document.getElementById('lowbit-charts').textContent);
  Object.keys(charts).forEach(function (id) {
    var el = document.getElementById('chart-' + id);
    var spec = charts[id];
    if (!el || (spec.data && spec.data.values.length === 0)) return;
    var fail = function (e) { el.textContent = 'This chart could not be drawn: ' + (e && e.message || e); };
    try {
      var view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'svg', container: el, hover: true });
      view.runAsync().catch(fail);
    } catch (e) { fail(e); }
  });
})();`;

const CAPTIONS: Record<keyof ReportCharts, string> = {
  size: 'Top-1 accuracy against the packed model size (log scale). The Pareto front (red diamonds, dashed line) are the datatypes ' +
    'no other datatype beats in both accuracy and size. Mixed-precision rows (auto:<allocator>:<budget>: one weight width per layer, ' +
    'chosen under that fraction of the FP32 size) are framed by a blue square.',
  bops: 'Top-1 accuracy against bit-operations per image (MACs x weight bits x activation bits, log scale).',
  energy: `Estimated energy per image: ${HOROWITZ_CITATION}, with the rules of docs/cost-model.md.`,
  sqnr: 'Signal-to-quantization-noise ratio of each layer\'s weights, 10 log10(sum w^2 / sum (w - q(w))^2), where w are the ' +
    'weights the quantizer was applied to (after batch-norm folding; the fine-tuned weights for QAT) and q(w) the weights evaluation uses. ' +
    'Higher is closer to float; every bit of a uniform quantizer adds about 6 dB. Layers a datatype keeps in fp32 have no cell.',
  histogram: 'One layer\'s weights before (grey) and after (red) quantization, for a few datatypes: the quantized weights fall on ' +
    'the datatype\'s few values. Counts on a square-root scale.',
  sensitivity: 'Each conv/linear layer alone quantized (post-training, the others fp32) and the test accuracy it costs: the layers ' +
    'at the top of a mixed-precision allocation\'s list of bits to keep.',
};

function chartSection(id: keyof ReportCharts, charts: ReportCharts, missing?: string): string {
  const values = (charts[id]!.data as { values: unknown[] }).values;
  const empty = values.length === 0 ? `<p class="missing">${esc(missing ?? 'Nothing to plot.')}</p>` : '';
  return `<figure>\n<div class="chart" id="chart-${id}"></div>\n${empty}<figcaption>${esc(CAPTIONS[id])}</figcaption>\n</figure>`;
}

/**
 * The self-contained HTML report: charts, the table, the command, seed, machine and versions. `layers` (the
 * model's conv and linear layers) fill the table's "how" and "MAC area" columns; without them (a report
 * rebuilt from results.json alone) those cells are "-".
 */
export function compareHtml(results: CompareResults, layers?: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): string {
  const desc = describeRows(results.rows, layers, firstLast);
  const m = (results.machine ?? {}) as Record<string, unknown>;
  const rows = results.rows.map((r) => {
    const d = desc.get(r.spec);
    // the spec links to the row's quantized model, saved beside the report
    const tds = cells(r, d).map((c, i) => `<td${i >= 2 ? ' class="num"' : ''}>${i === 0 && r.model_file ? `<a href="${esc(encodeURI(r.model_file))}" title="the quantized model">${esc(c)}</a>` : esc(c)}</td>`).join('');
    const note = r.error ? `<td class="error">failed: ${esc(r.error)}</td>` : `<td>${esc(d?.note ?? '')}</td>`;
    return `<tr${r.error ? ' class="failed"' : ''}>${tds}${note}</tr>`;
  }).join('\n');
  const charts = compareCharts(results.rows, results.sensitivity);
  const libs = chartLibraries();
  const failed = results.rows.filter((r) => !plottable(r)).map((r) => r.spec);
  const old = 'This results.json has no per-layer weight statistics (it was written by an earlier lowbit); run lowbit compare again ' +
    'without --resume to record them.';
  const lowbitVersion = m.lowbit ? `lowbit ${m.lowbit}` : `lowbit ${pkg.version} (wrote this report; the results do not record their version)`;
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
figure { margin: 1.5em 0; }
figcaption { max-width: 60em; color: #555; }
p.missing { color: #a60; }
</style>
</head>
<body>
<h1>lowbit compare: ${esc(results.model)} on ${esc(results.dataset)}</h1>
<dl>
<dt>command</dt><dd><code>${esc(results.command)}</code></dd>
<dt>seed</dt><dd>${esc(results.seed)}</dd>
<dt>wall time</dt><dd>${esc(results.seconds)} s</dd>
<dt>machine</dt><dd>${esc(m.cpu)}, ${esc(m.cores)} cores, ${esc(m.memory_gb)} GB, ${esc(m.platform)} (${esc(m.host)})</dd>
<dt>versions</dt><dd>${esc(lowbitVersion)}, Node.js ${esc(m.node)}, ${esc(m.backend)} kernels x${esc(m.threads)} threads</dd>
<dt>charts</dt><dd>${libs.map((l) => `${esc(l.name)} ${esc(l.version)}`).join(', ')}, inlined in this file</dd>
</dl>
<noscript><p class="missing">The charts need JavaScript; the table below does not.</p></noscript>
${failed.length ? `<p>Not plotted (failed, see the table): ${failed.map((s) => `<code>${esc(s)}</code>`).join(', ')}</p>\n` : ''}<h2>Accuracy and cost</h2>
${chartSection('size', charts)}
${chartSection('bops', charts)}
${chartSection('energy', charts)}
<h2>What quantization does to the weights</h2>
${chartSection('sqnr', charts, old)}
${chartSection('histogram', charts, old)}
${charts.sensitivity ? `<h2>Which layer costs accuracy</h2>\n${chartSection('sensitivity', charts)}\n` : ''}<h2>All results</h2>
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
${libs.map((l) => `<script data-library="${esc(l.name)}">\n${scriptSource(l.source)}\n</script>`).join('\n')}
<script type="application/json" id="lowbit-charts">${scriptJson(charts)}</script>
<script>
${DRAW}
</script>
</body>
</html>
`;
}
