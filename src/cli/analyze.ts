// `lowbit analyze`: where a quantized model loses accuracy. For a spec (PTQ of the float model) or a quantized
// model file: per layer, the SQNR of the quantized weights and inputs and the error of the layer's output against
// the float model on real images (src/quant/sensitivity.ts); with --sensitivity <datatype>, each layer alone in
// that datatype (the others float) and the accuracy it costs.

import { textTable } from './table.js';
import { loadDataset, batches, evaluationBatchSize, type Dataset } from '../data/index.js';
import { checkModelArgument } from './model-arg.js';
import { UsageError } from '../errors.js';
import { loadModel } from '../zoo/index.js';
import { isQuantizedModelFile, loadQuantizedModel } from '../quant/load.js';
import { parseSpec } from '../quant/spec.js';
import { quantizePostTraining } from '../quant/ptq.js';
import { checkClasses, subsetSplit } from '../quant/compare.js';
import { disposeQuantized, type QuantizedModel } from '../quant/quantized.js';
import { layerDiff, layerSensitivity, type ModelDiff, type SensitivityResult } from '../quant/sensitivity.js';
import { specArgument } from '../quant/mixed-precision.js';
import type { CalibrationMethod } from '../quant/observers.js';

export interface AnalyzeCliOptions {
  model: string;
  dataset?: string;
  spec?: string;
  sensitivity?: string;
  samples: number;
  testSamples: number;
  calibSamples: number;
  method?: CalibrationMethod;
  seed: number;
}

export interface AnalyzeResult {
  model: string;
  dataset: string;
  spec: string;
  diff: ModelDiff;
  sensitivity?: SensitivityResult;
}

const db = (v: number | null) => (v === null ? '-' : v.toFixed(1));

export function diffTable(d: ModelDiff): string {
  const t = textTable(['layer', 'kind', 'weights', 'datatypes', 'W SQNR dB', 'A SQNR dB', 'out SQNR dB', 'out rel L2']);
  for (const l of d.layers) t.push([l.layer, l.kind, l.params, l.scheme, db(l.weight_sqnr_db), db(l.activation_sqnr_db), db(l.output_sqnr_db), l.output_rel_l2.toFixed(4)]);
  return `${t.toString()}\nlogits: SQNR ${db(d.logits_sqnr_db)} dB; same top-1 class as the float model on ${(100 * d.top1_agreement).toFixed(2)}% of ${d.samples} images\n` +
    'W/A SQNR: the datatype alone (weights; the layer\'s input in the quantized model); out: the layer\'s output against the float model\'s, every error up to it included';
}

export function sensitivityTable(s: SensitivityResult): string {
  const t = textTable(['layer', 'spec', 'top-1 %', 'vs FP32']);
  for (const l of s.layers) t.push([l.layer, l.spec, (100 * l.accuracy).toFixed(2), `${l.delta >= 0 ? '+' : ''}${(100 * l.delta).toFixed(2)}`]);
  return `each layer alone in ${s.datatype} (the others fp32, PTQ), ${s.samples} test images; FP32 ${(100 * s.float_accuracy).toFixed(2)}%\n${t.toString()}`;
}

export async function runAnalyze(o: AnalyzeCliOptions, log: (s: string) => void): Promise<AnalyzeResult> {
  checkModelArgument(o.model);
  const quantizedFile = !o.model.startsWith('zoo:') && isQuantizedModelFile(o.model);
  if (quantizedFile && o.spec) throw new UsageError(`--model ${o.model} is already quantized; --spec applies to a float model`);
  if (quantizedFile && o.sensitivity) throw new UsageError('--sensitivity quantizes one layer at a time: give the float model');
  const specText = o.spec ? specArgument(o.spec) : 'int8';
  if (!quantizedFile) parseSpec(specText); // usage errors before loading anything
  const source = quantizedFile ? null : loadModel(o.model);
  let q: QuantizedModel | null = null;
  try {
    if (quantizedFile) q = loadQuantizedModel(o.model);
    const meta = (source?.metadata ?? q!.sourceMetadata) as Record<string, unknown>;
    const dataName = o.dataset ?? (meta.dataset as string | undefined);
    if (!dataName) throw new UsageError('--dataset <name|path> is needed: the model does not say what it was trained on');
    const ds: Dataset = await loadDataset(dataName);
    const pre = meta.preprocess as { mean: number[]; std: number[] } | undefined;
    const normalize = pre ? { mean: pre.mean, std: pre.std } : ds.stats;
    if (source) checkClasses(source, ds);
    const calibSplit = subsetSplit(ds.train, o.calibSamples, o.seed + 3);
    const calibration = () => batches(calibSplit, { batchSize: Math.min(256, calibSplit.count), normalize });
    const testSplit = subsetSplit(ds.test, o.testSamples, o.seed + 1);
    const test = () => batches(testSplit, { batchSize: evaluationBatchSize(testSplit), normalize });
    if (!q) q = quantizePostTraining(source!, { spec: specText, calibration: calibration(), method: o.method ?? 'minmax', seed: o.seed, log });
    const diff = layerDiff(q, batches(subsetSplit(ds.test, o.samples, o.seed + 6), { batchSize: Math.min(128, o.samples), normalize }));
    const result: AnalyzeResult = { model: o.model, dataset: ds.name, spec: q.effective.text, diff };
    if (o.sensitivity) {
      result.sensitivity = layerSensitivity(source!, q.info, { datatype: o.sensitivity, calibration, test, method: o.method, seed: o.seed, log });
    }
    return result;
  } finally {
    if (q) disposeQuantized(q);
    source?.model.dispose();
  }
}
