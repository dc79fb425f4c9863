// `lowbit compare`: run every technique on a model and a dataset (src/quant/compare.ts) and present the
// results: a table on stdout, DIR/results.json and DIR/report.html (src/report; both rewritten atomically after
// every row).

import { join } from 'node:path';
import { textTable } from './table.js';
import { loadDataset } from '../data/index.js';
import { checkModelArgument } from './model-arg.js';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { loadModel } from '../zoo/index.js';
import { isQuantizedModelFile } from '../quant/load.js';
import { HOROWITZ_CITATION } from '../quant/cost.js';
import { DEFAULT_SPECS, calibrationBatches, calibrationSplit, checkHistLayer, compareRows, compareSettings, runCompare, traceLayers, type CompareResults, type CompareRow } from '../quant/compare.js';
import { runRowJobs } from './compare-jobs.js';
import type { CalibrationMethod } from '../quant/observers.js';
import type { FirstLastPolicy } from '../quant/conventions.js';
import type { LayerInfo } from '../quant/graph.js';
import type { QuantizedModel } from '../quant/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import { compileModel, compileQuantized } from '../runtime/index.js';
import { compareHtml } from '../report/compare-report.js';
import { HEAD, cells, describeRows } from '../report/format.js';
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

export { compareHtml, describeRows };

export interface CompareCliOptions {
  model: string;
  dataset: string;
  specs?: string[];
  quick?: boolean;
  seed: number;
  resume?: boolean;
  out: string;
  epochs?: number;
  lowBitEpochs?: number;
  binaryActEpochs?: number;
  scratchEpochs?: number;
  calibSamples?: number;
  method?: CalibrationMethod;
  firstLast?: FirstLastPolicy;
  /** The layer whose weight histogram the report shows (default: the largest conv layer). */
  histLayer?: string;
  /** Mixed-precision rows at these fractions of the FP32 size (--mixed 0.25,0.125). */
  mixed?: number[];
  mixedAllocator?: 'greedy' | 'lin' | 'both';
  /** Each layer alone in this datatype (--sensitivity int4). */
  sensitivity?: string;
  /** Keep each row's quantized model in DIR/models/ (default; --no-models: false). */
  models?: boolean;
  /** Rows made by this many child processes at once (--jobs). */
  jobs?: number;
  /** Kernel threads in all (split between the jobs). */
  threads?: number;
}

/** The table printed on stdout. */
export function compareTable(results: CompareResults, layers: readonly LayerInfo[], firstLast: FirstLastPolicy = 'auto'): string {
  const desc = describeRows(results.rows, layers, firstLast);
  const table = textTable([...HEAD, 'note']);
  for (const r of results.rows) {
    const d = desc.get(r.spec);
    table.push([...cells(r, d), r.error ? `FAILED: ${r.error}` : d?.note ?? '']);
  }
  return `${results.model} on ${results.dataset}, seed ${results.seed}, ${results.seconds} s\n${table.toString()}\n` +
    `energy and MAC area: ${HOROWITZ_CITATION}, see docs/cost-model.md; ms/img: one image (batch 1) on lowbit's runtime, ` +
    `with the kernels named (int8, binary XNOR-popcount, float for layers whose datatype has no integer kernel)\n`;
}

export async function runCompareCli(o: CompareCliOptions, argv: string[], log: (s: string) => void, print: (s: string) => void): Promise<CompareResults> {
  checkModelArgument(o.model);
  if (!o.model.startsWith('zoo:') && isQuantizedModelFile(o.model)) {
    throw new UsageError(`--model ${o.model} is already quantized; give the float model it was made from`);
  }
  const source = loadModel(o.model);
  try {
    const ds = await loadDataset(o.dataset);
    const pre = source.metadata.preprocess as { mean: number[]; std: number[] } | undefined;
    const settings = compareSettings(!!o.quick, {
      epochs: o.epochs, lowBitEpochs: o.lowBitEpochs, binaryActivationEpochs: o.binaryActEpochs, scratchEpochs: o.scratchEpochs, calibSamples: o.calibSamples, method: o.method, firstLast: o.firstLast,
    });
    const specs = o.specs ?? [...DEFAULT_SPECS];
    log(`comparing ${specs.length} datatypes on ${o.model} (${source.name}) with ${ds.name}${o.quick ? ' (--quick: a subset and one short epoch)' : ''}; writing ${o.out}`);
    const reportPath = join(o.out, 'report.html');
    const command = `lowbit ${argv.join(' ')}`;
    const mixed = o.mixed ? { budgets: o.mixed, allocators: o.mixedAllocator === 'both' ? ['greedy', 'lin'] as const : [o.mixedAllocator ?? 'greedy'] as const } : undefined;
    let finished: CompareRow[] | undefined;
    let traced: LayerInfo[] | undefined;
    const normalize = pre ? { mean: pre.mean, std: pre.std } : ds.stats;
    if ((o.jobs ?? 1) > 1) {
      const rows = compareRows(specs, mixed);
      // the report follows the rows as the jobs finish them, as it does in one process
      traced = traceLayers(source, calibrationBatches(calibrationSplit(ds, settings, o.seed), normalize), ds.name);
      checkHistLayer(traced, o.histLayer); // before hours of jobs, not after
      finished = await runRowJobs({
        cli: o, source, dataset: ds, names: rows.names, mixed: rows.mixed, command, jobs: o.jobs!, threads: o.threads ?? 1, log,
        onWrite: (r) => writeFileAtomic(reportPath, compareHtml(r, traced, settings.firstLast)),
      });
    }
    let layers: readonly LayerInfo[] = [];
    const results = runCompare({
      source, modelName: o.model, dataset: ds, specs, quick: !!o.quick, seed: o.seed, outDir: o.out,
      // after the jobs, their rows are in results.json
      resume: o.resume || finished !== undefined, finished,
      command, settings, normalize, log,
      progress: !!process.stderr.isTTY, histLayer: o.histLayer, layers: traced, sensitivity: o.sensitivity, mixed, saveModels: o.models !== false,
      latency: runtimeLatency(source),
      onWrite: (r, l) => {
        layers = l;
        writeFileAtomic(reportPath, compareHtml(r, l, settings.firstLast));
      },
    });
    print(compareTable(results, layers, settings.firstLast));
    const saved = results.rows.find((r) => r.model_file);
    log(`wrote ${join(o.out, 'results.json')} and ${reportPath}` +
      (saved ? `; each row's quantized model is in ${join(o.out, 'models')} (lowbit eval --model ${join(o.out, saved.model_file!)} --dataset ${o.dataset})` : ''));
    return results;
  } finally {
    source.model.dispose();
  }
}
