// The comparison report's charts as Vega-Lite specs (https://vega.github.io/vega-lite/): data plus a
// declarative description that the inlined Vega-Lite compiles and Vega draws in the page. Every number the
// charts show is computed here, in TypeScript (the Pareto front included); the page only renders.
//
// Rows that failed are not plotted (the report lists them). Rows written before lowbit recorded per-layer
// SQNR and weight histograms (results.json of earlier versions) simply have no marks in those two charts.

import type { CompareRow } from '../quant/compare.js';
import type { SensitivityResult } from '../quant/sensitivity.js';

/** A Vega-Lite spec: plain JSON. */
export type VegaLiteSpec = Record<string, unknown>;

export interface ReportCharts {
  /** Accuracy against packed model size (log x), Pareto front marked. */
  size: VegaLiteSpec;
  /** Accuracy against bit-operations (log x). */
  bops: VegaLiteSpec;
  /** Estimated energy per image, one bar per spec. */
  energy: VegaLiteSpec;
  /** SQNR of the quantized weights, per layer and spec. */
  sqnr: VegaLiteSpec;
  /** One layer's weights before and after quantization, for a few specs. */
  histogram: VegaLiteSpec;
  /** Accuracy delta of each layer alone quantized (only when the comparison measured it). */
  sensitivity?: VegaLiteSpec;
}

/** A row the charts can place: finished, with accuracy and size. */
export function plottable(r: CompareRow): boolean {
  return !r.error && r.accuracy !== null && r.bytes !== null;
}

export interface ParetoPoint {
  spec: string;
  accuracy: number;
  bytes: number;
}

/**
 * The rows not dominated in (higher accuracy, smaller size): no other row is at least as accurate and at least
 * as small, and strictly better in one. Sorted by size. Equal points are all on the front.
 */
export function paretoFront<T extends ParetoPoint>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.bytes - b.bytes || b.accuracy - a.accuracy);
  const front: T[] = [];
  let best = -Infinity; // highest accuracy among smaller-or-equal rows seen so far
  let bestBytes = NaN;
  for (const p of sorted) {
    if (p.accuracy > best || (p.accuracy === best && p.bytes === bestBytes)) {
      front.push(p);
      best = p.accuracy;
      bestBytes = p.bytes;
    }
  }
  return front;
}

/** Up to `count` specs for the histogram panels: representative datatypes first, then the others in row order. */
export function histogramSpecs(rows: readonly CompareRow[], count = 6): string[] {
  const preferred = ['int8', 'int4', 'pow2:4', 'kmeans:16', 'twn', 'binary', 'ttq', 'minifloat:e4m3', 'dorefa:w2a2'];
  const have = rows.filter((r) => !r.error && r.histogram).map((r) => r.spec);
  return [...preferred.filter((s) => have.includes(s)), ...have.filter((s) => !preferred.includes(s))].slice(0, count);
}

const WIDTH = 560, HEIGHT = 340;

const tooltip = [
  { field: 'spec', type: 'nominal' },
  { field: 'accuracy', type: 'quantitative', format: '.2%', title: 'top-1' },
  { field: 'bytes', type: 'quantitative', format: ',', title: 'packed bytes' },
  { field: 'bops', type: 'quantitative', format: '.3s', title: 'BOPs' },
  { field: 'energy_uj', type: 'quantitative', format: '.3f', title: 'energy uJ' },
];

function accuracyScatter(values: unknown[], x: { field: string; title: string }, title: string, under: VegaLiteSpec[], pointEncoding: VegaLiteSpec): VegaLiteSpec {
  return {
    title, width: WIDTH, height: HEIGHT,
    data: { values },
    encoding: {
      x: { field: x.field, type: 'quantitative', scale: { type: 'log' }, title: x.title, axis: { format: '~s' } },
      y: { field: 'accuracy', type: 'quantitative', scale: { zero: false }, title: 'top-1 accuracy', axis: { format: '%' } },
    },
    layer: [
      ...under,
      { mark: { type: 'point', filled: true, size: 70 }, encoding: { ...pointEncoding, tooltip } },
      { mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 10 }, encoding: { text: { field: 'spec' } } },
    ],
  };
}

/** The five charts of a comparison, and the sensitivity chart when it was measured. */
export function compareCharts(rows: readonly CompareRow[], sensitivity?: SensitivityResult): ReportCharts {
  const ok = rows.filter(plottable);
  const onFront = new Set(paretoFront(ok.map((r) => ({ spec: r.spec, accuracy: r.accuracy!, bytes: r.bytes! }))).map((p) => p.spec));
  const points = ok.map((r) => ({
    spec: r.spec, accuracy: r.accuracy, bytes: r.bytes, bops: r.bops, energy_uj: r.energy_uj, compression: r.compression,
    pareto: onFront.has(r.spec), front: onFront.has(r.spec) ? 'Pareto front' : 'dominated', mixed: !!r.mixed,
  }));

  // The front as a dashed line through its points, which are drawn larger, as diamonds, in red.
  const front = (range: unknown[]) => ({ field: 'front', type: 'nominal', title: null, scale: { domain: ['Pareto front', 'dominated'], range } });
  // Mixed-precision rows (--mixed) get a blue square around their point.
  const size = accuracyScatter(points, { field: 'bytes', title: 'packed model size (bytes, log scale)' }, 'Accuracy against model size', [{
    transform: [{ filter: 'datum.pareto' }],
    mark: { type: 'line', color: '#d62728', strokeDash: [5, 3], strokeWidth: 1.5 },
    encoding: { order: { field: 'bytes', type: 'quantitative' } },
  }, ...(points.some((p) => p.mixed) ? [{
    transform: [{ filter: 'datum.mixed' }],
    mark: { type: 'square', filled: false, size: 300, color: '#1f77b4', strokeWidth: 2 },
  }] : [])], { color: front(['#d62728', '#7f7f7f']), shape: front(['diamond', 'circle']), size: { condition: { test: 'datum.pareto', value: 120 }, value: 60 } });

  const bops = accuracyScatter(points.filter((p) => p.bops !== null && p.bops > 0),
    { field: 'bops', title: 'bit-operations per image (MACs x W bits x A bits, log scale)' }, 'Accuracy against bit-operations', [],
    { color: { value: '#4c78a8' } });

  const energy: VegaLiteSpec = {
    title: 'Estimated energy per image', width: WIDTH,
    data: { values: points.filter((p) => p.energy_uj !== null) },
    mark: { type: 'bar', color: '#4c78a8' },
    encoding: {
      y: { field: 'spec', type: 'nominal', sort: null, title: null },
      x: { field: 'energy_uj', type: 'quantitative', title: 'energy per image (uJ, Horowitz 2014 estimates)' },
      tooltip,
    },
  };

  const sqnrValues = rows.filter((r) => !r.error && r.layers).flatMap((r) =>
    r.layers!.filter((l) => l.sqnr_db !== null).map((l, i) => ({ spec: r.spec, layer: l.name, order: i, sqnr_db: l.sqnr_db })));
  const layerOrder: string[] = [];
  for (const r of rows) for (const l of r.layers ?? []) if (!layerOrder.includes(l.name)) layerOrder.push(l.name);
  // A heatmap (datatype x layer) stays readable with twenty datatypes and a ResNet's twenty layers.
  const sqnrSpecs = [...new Set(sqnrValues.map((v) => v.spec))];
  const dbs = sqnrValues.map((v) => v.sqnr_db!);
  const middle = dbs.length ? (Math.min(...dbs) + Math.max(...dbs)) / 2 : 0;
  const sqnr: VegaLiteSpec = {
    title: 'Weight SQNR per layer (dB)',
    data: { values: sqnrValues },
    encoding: {
      x: { field: 'layer', type: 'ordinal', sort: layerOrder, title: 'layer (execution order)', axis: { labelAngle: layerOrder.length > 8 ? -45 : 0 } },
      y: { field: 'spec', type: 'nominal', sort: sqnrSpecs, title: null },
    },
    layer: [
      {
        mark: { type: 'rect' },
        encoding: {
          color: { field: 'sqnr_db', type: 'quantitative', title: 'SQNR dB', scale: { scheme: 'viridis' } },
          tooltip: [{ field: 'spec', title: 'datatype' }, { field: 'layer' }, { field: 'sqnr_db', type: 'quantitative', format: '.1f', title: 'SQNR dB' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'sqnr_db', type: 'quantitative', format: '.0f' },
          color: { condition: { test: `datum.sqnr_db > ${middle}`, value: 'black' }, value: 'white' },
        },
      },
    ],
    config: { axis: { grid: false }, view: { step: 34 } },
  };

  const chosen = histogramSpecs(rows);
  const histValues = chosen.flatMap((spec) => {
    const h = rows.find((r) => r.spec === spec)!.histogram!;
    return (['float', 'quantized'] as const).flatMap((kind) => h[kind].map((count, i) => ({
      spec, panel: `${spec}, layer ${h.layer}`, kind: kind === 'float' ? 'float weights' : 'quantized weights', x0: h.edges[i], x1: h.edges[i + 1], count,
    })));
  });
  const histogram: VegaLiteSpec = {
    title: 'Weights of one layer before and after quantization',
    data: { values: histValues },
    facet: { field: 'panel', type: 'nominal', sort: chosen.map((s) => histValues.find((v) => v.spec === s)!.panel), title: null },
    columns: 3,
    resolve: { scale: { x: 'independent', y: 'independent' } },
    spec: {
      width: 240, height: 150,
      mark: { type: 'rect', opacity: 0.6 },
      encoding: {
        x: { field: 'x0', type: 'quantitative', title: 'weight value' },
        x2: { field: 'x1' },
        y: { field: 'count', type: 'quantitative', scale: { type: 'sqrt' }, title: 'weights (sqrt scale)' },
        y2: { datum: 0 },
        color: { field: 'kind', type: 'nominal', title: null, scale: { domain: ['float weights', 'quantized weights'], range: ['#9e9e9e', '#e45756'] } },
        tooltip: [{ field: 'kind' }, { field: 'x0', format: '.4f', title: 'from' }, { field: 'x1', format: '.4f', title: 'to' }, { field: 'count', title: 'weights' }],
      },
    },
  };
  const charts: ReportCharts = { size, bops, energy, sqnr, histogram };
  if (sensitivity) charts.sensitivity = sensitivityChart(sensitivity);
  return charts;
}

/** One bar per layer (execution order): the accuracy change when that layer alone is quantized. */
export function sensitivityChart(s: SensitivityResult): VegaLiteSpec {
  return {
    title: `Accuracy change with one layer alone in ${s.datatype} (the others fp32)`, width: WIDTH,
    data: { values: s.layers.map((l) => ({ layer: l.layer, spec: l.spec, accuracy: l.accuracy, delta: l.delta })) },
    mark: { type: 'bar', color: '#e45756' },
    encoding: {
      y: { field: 'layer', type: 'ordinal', sort: null, title: 'layer (execution order)' },
      x: { field: 'delta', type: 'quantitative', title: 'top-1 accuracy vs FP32 (percentage points)', axis: { format: '+.1%' } },
      tooltip: [{ field: 'spec' }, { field: 'accuracy', type: 'quantitative', format: '.2%', title: 'top-1' }, { field: 'delta', type: 'quantitative', format: '+.2%', title: 'vs FP32' }],
    },
  };
}
