// The comparison report (src/report): one self-contained HTML file with Vega and Vega-Lite inlined, the five
// charts as Vega-Lite specs with their data, the Pareto front computed right, and nothing from the results able
// to break out of the page's markup or scripts. Each chart spec is also compiled and drawn (to SVG) by the
// same libraries in Node, so a spec Vega-Lite rejects fails here rather than in a reader's browser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { chartLibraries, compareHtml } from '../src/report/compare-report.js';
import { compareCharts, paretoFront, type ReportCharts } from '../src/report/charts.js';
import { sharedHistogram, sqnrDb } from '../src/quant/weight-stats.js';
import type { CompareResults, CompareRow } from '../src/quant/compare.js';
import { rng } from './rng.js';

const EVIL = '<script>alert("spec")</script>';

function row(spec: string, accuracy: number, bytes: number, extra: Partial<CompareRow> = {}): CompareRow {
  return {
    spec, accuracy, delta: accuracy - 0.99, weight_bits: 8, act_bits: 8, bytes, compression: 246824 / bytes, bops: bytes * 400,
    energy_uj: bytes / 50000, latency_ms: 0.2, kernels: '5 int8', seconds: 1, ...extra,
  };
}

/** A comparison with ties, a failed row, rows with and without per-layer data, and hostile strings. */
function fixture(): CompareResults {
  const r = rng(7);
  const rows: CompareRow[] = [row('fp32', 0.99, 246824, { weight_bits: 32, act_bits: 32 })];
  for (let i = 0; i < 24; i++) {
    // coarse values so that equal sizes and equal accuracies occur
    rows.push(row(`t${i}`, 0.9 + Math.floor(r() * 10) / 100, 4000 + 2000 * Math.floor(r() * 12)));
  }
  rows.push(row('same-a', 0.985, 9000), row('same-b', 0.985, 9000)); // equal points: both or neither on the front
  const edges = Array.from({ length: 61 }, (_, i) => -0.3 + i * 0.01);
  const hist = (layer: string) => ({ layer, edges, float: Array.from({ length: 60 }, (_, i) => 40 - Math.abs(30 - i)), quantized: Array.from({ length: 60 }, (_, i) => (i % 20 === 0 ? 800 : 0)) });
  rows.push(row('int8', 0.991, 62474, { layers: [{ name: 'conv0', sqnr_db: 38.2 }, { name: 'conv3', sqnr_db: 40.1 }, { name: 'linear7', sqnr_db: null }], histogram: hist('conv3') }));
  rows.push(row('twn', 0.987, 16000, { layers: [{ name: 'conv3', sqnr_db: 9.5 }], histogram: hist('conv3') }));
  rows.push(row(EVIL, 0.95, 5000, { layers: [{ name: 'conv3', sqnr_db: 1 }], histogram: hist('conv3') }));
  rows.push({ ...row('broken', 0, 0), accuracy: null, delta: null, bytes: null, compression: null, bops: null, energy_uj: null, latency_ms: null, error: 'it failed </script><b>' });
  return {
    model: 'zoo:lenet5-mnist', weights_sha256: '0'.repeat(64), dataset: 'mnist', command: `lowbit compare --specs '${EVIL}' --out </script>x`, seed: 3, seconds: 12.5,
    machine: { host: 'h<i>', cpu: 'cpu', cores: 2, memory_gb: 8, node: 'v20.0.0', platform: 'linux-x64', backend: 'wasm', threads: 2, lowbit: '0.1.0' },
    rows,
  };
}

function embeddedCharts(html: string): ReportCharts {
  const m = html.match(/<script type="application\/json" id="lowbit-charts">([^]*?)<\/script>/);
  assert.ok(m, 'the chart data block');
  return JSON.parse(m[1]) as ReportCharts;
}

type Values = Record<string, unknown>[];
const values = (spec: Record<string, unknown>) => (spec.data as { values: Values }).values;

describe('comparison report', () => {
  const results = fixture();
  const html = compareHtml(results);

  it('is one file: the libraries inlined, no external URL in src or href, no <link>', () => {
    assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /<link\b/i);
    assert.doesNotMatch(html, /<script[^>]*\bsrc=/i);
    assert.doesNotMatch(html, /sourceMappingURL/);
    const libs = chartLibraries();
    assert.deepEqual(libs.map((l) => l.name), ['vega', 'vega-lite']);
    for (const l of libs) {
      assert.match(l.version, /^\d+\.\d+\.\d+/);
      assert.ok(l.source.length > 100_000, `${l.name} browser build`);
      assert.ok(html.includes(l.source.slice(0, 2000)), `${l.name} is inlined`);
      assert.ok(html.includes(`${l.name} ${l.version}`), `${l.name}'s version is stated`);
    }
    assert.ok(html.indexOf('data-library="vega"') < html.indexOf('data-library="vega-lite"'), 'vega before vega-lite (which needs it)');
  });

  it('states the command, seed, machine and versions', () => {
    assert.match(html, /<dt>seed<\/dt><dd>3<\/dd>/);
    assert.match(html, /lowbit 0\.1\.0, Node\.js v20\.0\.0, wasm kernels x2 threads/);
    assert.ok(html.includes(`<code>lowbit compare --specs &#39;&lt;script&gt;alert(&quot;spec&quot;)&lt;/script&gt;&#39; --out &lt;/script&gt;x</code>`));
    assert.match(html, /h&lt;i&gt;/);
  });

  it('escapes everything from the results: nothing closes a script early or adds markup', () => {
    // the only script elements are the page's own: two libraries, the chart data, the drawing code
    assert.equal(html.match(/<script\b/gi)!.length, 4);
    assert.equal(html.match(/<\/script/gi)!.length, 4);
    assert.doesNotMatch(html, /<\/script><b>|h<i>/);
    assert.ok(html.includes('<td>&lt;script&gt;alert(&quot;spec&quot;)&lt;/script&gt;</td>'));
    assert.ok(html.includes('failed: it failed &lt;/script&gt;&lt;b&gt;'));
    // and the data block still parses back to the exact strings
    const charts = embeddedCharts(html);
    assert.ok(values(charts.size).some((v) => v.spec === EVIL));
    // the drawing code is valid JavaScript
    const scripts = [...html.matchAll(/<script>([^]*?)<\/script>/g)];
    assert.equal(scripts.length, 1);
    assert.doesNotThrow(() => new Function(scripts[0][1]));
  });

  it('embeds the five charts with their data; failed rows are listed, not plotted', () => {
    const charts = embeddedCharts(html);
    assert.deepEqual(Object.keys(charts).sort(), ['bops', 'energy', 'histogram', 'size', 'sqnr']);
    for (const id of Object.keys(charts)) assert.ok(html.includes(`<div class="chart" id="chart-${id}"></div>`), id);
    assert.deepEqual(charts, JSON.parse(JSON.stringify(compareCharts(results.rows))));
    const plotted = results.rows.filter((r) => !r.error).map((r) => r.spec);
    for (const id of ['size', 'bops', 'energy'] as const) assert.deepEqual(values(charts[id]).map((v) => v.spec), plotted, id);
    assert.match(html, /Not plotted \(failed, see the table\): <code>broken<\/code>/);
    // log x for size and BOPs
    for (const id of ['size', 'bops'] as const) assert.equal(((charts[id].encoding as Values[number]).x as { scale: { type: string } }).scale.type, 'log');
    // SQNR: every finite per-layer value, by spec and layer
    assert.deepEqual(values(charts.sqnr).map((v) => `${v.spec}/${v.layer}/${v.sqnr_db}`), ['int8/conv0/38.2', 'int8/conv3/40.1', 'twn/conv3/9.5', `${EVIL}/conv3/1`]);
    // histograms: the representative datatypes first, both distributions, the counts unchanged
    const h = values(charts.histogram);
    assert.deepEqual([...new Set(h.map((v) => v.spec))], ['int8', 'twn', EVIL]);
    for (const spec of ['int8', 'twn']) {
      const of = (kind: string) => h.filter((v) => v.spec === spec && v.kind === kind).map((v) => v.count as number);
      const source = results.rows.find((x) => x.spec === spec)!.histogram!;
      assert.deepEqual(of('float weights'), source.float);
      assert.deepEqual(of('quantized weights'), source.quantized);
    }
  });

  it('marks the Pareto front: exactly the rows no other row beats in both accuracy and size', () => {
    const ok = results.rows.filter((r) => !r.error);
    const dominated = (r: CompareRow) => ok.some((s) => s !== r && s.accuracy! >= r.accuracy! && s.bytes! <= r.bytes! && (s.accuracy! > r.accuracy! || s.bytes! < r.bytes!));
    const expected = ok.filter((r) => !dominated(r)).map((r) => r.spec).sort();
    const charts = embeddedCharts(html);
    const marked = values(charts.size).filter((v) => v.pareto).map((v) => v.spec as string).sort();
    assert.deepEqual(marked, expected);
    assert.ok(expected.length >= 3 && expected.length < ok.length);
    assert.ok(expected.includes('same-a') === expected.includes('same-b'));
    // the front line connects the marked points in order of size
    const layers = charts.size.layer as { mark: { type: string }; transform?: { filter: string }[] }[];
    assert.deepEqual(layers.map((l) => l.mark.type), ['line', 'point', 'text']);
    assert.equal(layers[0].transform![0].filter, 'datum.pareto');
    // brute force against the O(n log n) function on random points with many ties
    const r = rng(11);
    for (let trial = 0; trial < 50; trial++) {
      const pts = Array.from({ length: 30 }, (_, i) => ({ spec: `p${i}`, accuracy: Math.floor(r() * 6), bytes: Math.floor(r() * 6) }));
      const brute = pts.filter((p) => !pts.some((q) => q !== p && q.accuracy >= p.accuracy && q.bytes <= p.bytes && (q.accuracy > p.accuracy || q.bytes < p.bytes)));
      assert.deepEqual(paretoFront(pts).map((p) => p.spec).sort(), brute.map((p) => p.spec).sort());
    }
  });

  it('every chart compiles with Vega-Lite and draws with Vega', async () => {
    const charts = embeddedCharts(html);
    for (const [id, spec] of Object.entries(charts)) {
      const warnings: string[] = [];
      const logger = { level() { return logger; }, warn: (...a: unknown[]) => { warnings.push(a.join(' ')); return logger; }, info: () => logger, debug: () => logger, error: (...a: unknown[]) => { throw new Error(a.join(' ')); } };
      const compiled = vegaLite.compile(spec as never, { logger: logger as never });
      assert.deepEqual(warnings, [], id);
      const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
      const svg = await view.toSVG();
      view.finalize();
      assert.match(svg, /^<svg/, id);
      if (id === 'size') for (const spec of ['fp32', 'twn']) assert.ok(svg.includes(`>${spec}</text>`), `size chart labels ${spec}`);
    }
  });

  it('a results.json without per-layer data (earlier versions) still gets the other charts', () => {
    const old = fixture();
    for (const r of old.rows) { delete r.layers; delete r.histogram; }
    delete old.machine.lowbit;
    const page = compareHtml(old);
    const charts = embeddedCharts(page);
    assert.equal(values(charts.sqnr).length, 0);
    assert.equal(values(charts.histogram).length, 0);
    assert.ok(values(charts.size).length > 20);
    assert.equal(page.match(/no per-layer weight statistics/g)!.length, 2);
    assert.match(page, /the results do not record their version/);
    assert.match(page, /<td>-<\/td>/, 'without the model\'s layers the "how" column is empty');
  });
});

describe('weight statistics', () => {
  it('SQNR: 10 log10(signal / noise); infinite (null) when nothing changed', () => {
    assert.equal(sqnrDb([1, 2], [1, 2]), null);
    assert.ok(Math.abs(sqnrDb([3, 4], [3, 3])! - 10 * Math.log10(25)) < 1e-12);
  });

  it('shared histogram: both distributions over the same edges, every value counted once', () => {
    const h = sharedHistogram([0, 0.5, 1, 1], [-1, 2], 6);
    assert.deepEqual(h.edges, [-1, -0.5, 0, 0.5, 1, 1.5, 2]);
    assert.deepEqual(h.a, [0, 0, 1, 1, 2, 0]);
    assert.deepEqual(h.b, [1, 0, 0, 0, 0, 1]);
    const c = sharedHistogram([3, 3], [3], 4);
    assert.equal(c.a.reduce((x, y) => x + y), 2);
    assert.equal(c.b.reduce((x, y) => x + y), 1);
  });
});
