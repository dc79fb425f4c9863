// `lowbit quantize`: a float model in, a quantized .lowbit model out, by post-training quantization
// (calibration on a dataset) or quantization-aware training (--qat), then its accuracy on the test split.
// `--spec auto --budget F` first chooses one weight bit width per layer under a size budget (mixed-precision.ts)
// and writes the chosen spec next to the output (<out>.spec), to edit and reuse with --spec <file>.spec.

import { loadDataset, batches, evaluationBatchSize, type Dataset } from '../data/index.js';
import { checkModelArgument } from './model-arg.js';
import { LowbitError, UsageError } from '../errors.js';
import { evaluate } from '../train/trainer.js';
import { loadModel } from '../zoo/index.js';
import { isQuantizedModelFile } from '../quant/load.js';
import { parseSpec } from '../quant/spec.js';
import { quantizePostTraining } from '../quant/ptq.js';
import { fineTuneAugment, quantizeAwareTraining, qatCheckpoints } from '../quant/qat.js';
import { rmSync } from 'node:fs';
import { needsTraining, trainsFromScratch, type FirstLastPolicy } from '../quant/conventions.js';
import { checkClasses, costOf, subsetSplit } from '../quant/compare.js';
import { disposeQuantized, type QuantizedModel } from '../quant/quantized.js';
import { saveQuantizedModel } from '../quant/load.js';
import { exportOnnx } from '../formats/onnx/export.js';
import { writeFileAtomic } from '../formats/atomic.js';
import type { CalibrationMethod } from '../quant/observers.js';
import { allocateMixedPrecision, specArgument, specFileText, type Allocator, type MixedAllocation } from '../quant/mixed-precision.js';

export interface QuantizeCliOptions {
  model: string;
  spec: string;
  calib?: string;
  calibSamples: number;
  method?: CalibrationMethod;
  percentile?: number;
  qat?: boolean;
  epochs?: number;
  dataset?: string;
  fromScratch?: boolean;
  firstLast: FirstLastPolicy;
  biasCorrection: boolean;
  seed: number;
  out: string;
  eval: boolean;
  /** QAT: continue from <out>.ckpt. */
  resume?: boolean;
  /** --spec auto: largest packed size as a fraction of the FP32 size. */
  budget?: number;
  allocator?: Allocator;
  /** --spec auto: activation datatype of every layer. */
  act?: string;
  bits?: number[];
  perChannel?: boolean;
}

export interface QuantizeResult {
  spec: string;
  effective_spec: string;
  mode: 'ptq' | 'qat';
  accuracy: number | null;
  float_accuracy: number | null;
  bytes: number;
  compression: number;
  out: string;
  /** --spec auto: the allocation and the spec file written. */
  mixed?: MixedAllocation & { spec_file: string };
}

/** Where `--spec auto` writes the chosen spec: beside the output, <name>.spec. */
export function specFilePath(out: string): string {
  return out.replace(/\.(lowbit|onnx)$/i, '') + '.spec';
}

export async function runQuantize(o: QuantizeCliOptions, argv: string[], log: (s: string) => void): Promise<QuantizeResult> {
  checkModelArgument(o.model);
  if (!o.out.endsWith('.lowbit') && !o.out.endsWith('.onnx')) {
    throw new UsageError(`--out ${o.out}: name it <name>.lowbit (lowbit's quantized model) or <name>.onnx (QDQ ONNX for onnxruntime)`);
  }
  const auto = o.spec.trim().toLowerCase() === 'auto';
  if (auto && o.budget === undefined) throw new UsageError('--spec auto needs --budget <fraction of the FP32 size>, e.g. --budget 0.25');
  if (!auto && (o.budget !== undefined || o.allocator !== undefined || o.act !== undefined || o.bits !== undefined || o.perChannel)) {
    throw new UsageError('--budget, --allocator, --act, --bits and --per-channel choose a mixed-precision spec: use them with --spec auto');
  }
  let spec = parseSpec(auto ? 'fp32' : specArgument(o.spec));
  if (o.fromScratch && !o.qat) throw new UsageError('--from-scratch trains the model: use it with --qat');
  if (o.epochs !== undefined && !o.qat) throw new UsageError('--epochs is the number of QAT epochs: use it with --qat');
  if (!o.model.startsWith('zoo:') && isQuantizedModelFile(o.model)) {
    throw new UsageError(`--model ${o.model} is already quantized; give the float model it was made from`);
  }
  const source = loadModel(o.model);
  let q: QuantizedModel | null = null;
  try {
    const trained = source.metadata.dataset as string | undefined;
    const dataName = o.qat ? o.dataset ?? o.calib ?? trained : o.calib ?? o.dataset ?? trained;
    if (!dataName) {
      throw new UsageError(o.qat ? '--qat needs --dataset <name|path> to train on' : 'PTQ needs --calib <dataset> for the calibration samples (e.g. --calib mnist)');
    }
    const ds: Dataset = await loadDataset(dataName);
    checkClasses(source, ds);
    const pre = source.metadata.preprocess as { mean: number[]; std: number[] } | undefined;
    const normalize = pre ? { mean: pre.mean, std: pre.std } : ds.stats;
    const calibSplit = subsetSplit(ds.train, o.calibSamples, o.seed + 3);
    const calibrationBatches = () => batches(calibSplit, { batchSize: Math.min(256, calibSplit.count), normalize });
    let mixed: MixedAllocation | undefined;
    if (auto) {
      mixed = allocateMixedPrecision(source, calibrationBatches, {
        budget: o.budget!, allocator: o.allocator ?? 'greedy', bits: o.bits, act: o.act, perChannel: o.perChannel, method: o.method, seed: o.seed, log,
      });
      spec = parseSpec(mixed.spec);
    }
    const calibration = calibrationBatches();
    if (!o.qat && needsTraining(spec)) {
      log(`note: ${spec.text} has fewer than 8 bits or is a training technique; post-training quantization may lose accuracy (add --qat to fine-tune)`);
    }
    const started = Date.now();
    if (o.qat) {
      const fromScratch = o.fromScratch ?? trainsFromScratch(spec);
      const augment = fineTuneAugment(source, ds.train.channels);
      if (augment) log('fine-tuning on random crops and flips, as the float model was trained');
      q = quantizeAwareTraining(source, {
        spec, epochs: o.epochs ?? (fromScratch ? 5 : 3), fromScratch, seed: o.seed, calibration, firstLast: o.firstLast, log,
        progress: !!process.stderr.isTTY, method: o.method, checkpointPath: `${o.out}.ckpt`, resume: o.resume,
        data: {
          trainCount: ds.train.count,
          trainBatches: (epoch) => batches(ds.train, { batchSize: 64, shuffle: true, seed: o.seed, epoch, augment, normalize }),
          testBatches: () => batches(subsetSplit(ds.test, 1000, o.seed + 4), { batchSize: evaluationBatchSize(ds.test), normalize }),
        },
      });
    } else {
      q = quantizePostTraining(source, {
        spec, calibration, method: o.method ?? 'minmax', percentile: o.percentile, biasCorrection: o.biasCorrection, firstLast: o.firstLast, seed: o.seed, log,
      });
    }
    let accuracy: number | null = null, floatAccuracy: number | null = null;
    if (o.eval) {
      if (ds.test.count === 0) throw new LowbitError(`${dataName} has no test split to evaluate on; pass --no-eval`);
      const test = () => batches(ds.test, { batchSize: evaluationBatchSize(ds.test), normalize });
      floatAccuracy = evaluate(source.model, test()).accuracy;
      accuracy = evaluate(q.model, test()).accuracy;
      log(`test accuracy: ${(100 * accuracy).toFixed(2)}% quantized, ${(100 * floatAccuracy).toFixed(2)}% float (${ds.test.count} images of ${ds.name})`);
    }
    const cost = costOf(source, q.info, q);
    if (o.out.endsWith('.onnx')) {
      // QDQ ONNX (int8 weights and activations where the datatype has them, exact float ops otherwise)
      writeFileAtomic(o.out, exportOnnx(q, 'onnx-qdq'));
      log(`saved ${o.out}: ${q.effective.text}, ${q.mode.toUpperCase()}, QDQ ONNX (float32 pixels / 255 in, [N, classes] out)`);
    } else {
      saveQuantizedModel(o.out, q, {
        quantizedBy: { command: `lowbit ${argv.join(' ')}`, dataset: ds.name, seconds: (Date.now() - started) / 1000, testAccuracy: accuracy, floatTestAccuracy: floatAccuracy },
      });
      log(`saved ${o.out}: ${q.effective.text}, ${q.mode.toUpperCase()}, packed ${cost.bytes} bytes (${cost.compression.toFixed(1)}x smaller than fp32)`);
    }
    let mixedResult: QuantizeResult['mixed'];
    if (mixed) {
      const specFile = specFilePath(o.out);
      writeFileAtomic(specFile, specFileText(mixed, o.model));
      log(`wrote ${specFile}: the chosen per-layer spec (edit it and reuse it with --spec ${specFile})`);
      mixedResult = { ...mixed, spec_file: specFile };
    }
    if (o.qat) for (const f of qatCheckpoints(`${o.out}.ckpt`)) rmSync(f, { force: true });
    return {
      spec: spec.text, effective_spec: q.effective.text, mode: q.mode, accuracy, float_accuracy: floatAccuracy,
      bytes: cost.bytes, compression: +cost.compression.toFixed(2), out: o.out, ...(mixedResult ? { mixed: mixedResult } : {}),
    };
  } finally {
    if (q) disposeQuantized(q);
    source.model.dispose();
  }
}
