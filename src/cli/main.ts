#!/usr/bin/env node
// The lowbit command line. Exit codes: 0 ok, 1 failed, 2 bad usage.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { LowbitError } from '../errors.js';
import { OutOfMemoryError } from '../kernels/memory.js';
import { init, shutdown } from '../tensor/backend.js';
import { CALIBRATION_METHODS } from '../quant/observers.js';

// Relaxed SIMD (fused multiply-add) speeds up the GEMM and convolution kernels by about a third; Node 20
// ships it behind a V8 flag. The kernels use it only after a self-test against plain SIMD passes, so the
// CLI turns the flag on before any WebAssembly is compiled, unless told not to.
if (!process.argv.includes('--no-relaxed-simd')) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be an integer >= 0, got "${v}"`);
    return n;
  };
}

function positiveNumber(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0, got "${v}"`);
    return n;
  };
}

function nonNegativeNumber(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0, got "${v}"`);
    return n;
  };
}

function choice(name: string, values: string[]) {
  return (v: string) => {
    if (!values.includes(v)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}, got "${v}"`);
    return v;
  };
}

function intList(v: string): number[] {
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got "${v}"`);
  return list;
}

/** --specs a,b,c (repeatable: each use adds its list; a spec with commas, w=..,a=.., is given alone). */
function specList(v: string, previous: string[] | undefined): string[] {
  const single = /[=;]/.test(v);
  const list = single ? [v.trim()] : v.split(',').map((s) => s.trim());
  if (list.some((s) => s === '')) throw new InvalidArgumentError(`--specs: empty spec in "${v}"`);
  return [...(previous ?? []), ...list];
}

export function buildProgram(): Command {
  const program = new Command()
    .name('lowbit')
    .description('Quantize CNNs to low-bit datatypes, compare the techniques, run them with integer and bitwise WebAssembly kernels.')
    .version(pkg.version)
    .option('--verbose', 'print stack traces of errors')
    .option('--no-relaxed-simd', 'plain WebAssembly SIMD only (no fused multiply-add)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('train')
    .description('train a zoo model on a dataset; checkpoints every epoch (<out>.ckpt), --resume continues after a kill')
    .requiredOption('--model <name>', 'zoo architecture: mlp, lenet5, vgg-small, resnet20, mobilenet-mini')
    .requiredOption('--dataset <name|path>', 'mnist, fashion-mnist, cifar10, or a folder / .tar.gz of images')
    .option('--epochs <n>', 'epochs (default: 10 for gray images, 30 for color)', positiveInt('--epochs'))
    .option('--seed <n>', 'seed of the initialization, shuffling and augmentation', nonNegativeInt('--seed'), 0)
    .option('--out <file>', 'where to write the trained model (default: <model>-<dataset>.lowbit)')
    .option('--batch-size <n>', 'mini-batch size', positiveInt('--batch-size'))
    .option('--optimizer <name>', 'sgd, adam or adamax', choice('--optimizer', ['sgd', 'adam', 'adamax']))
    .option('--lr <x>', 'base learning rate', positiveNumber('--lr'))
    .option('--momentum <x>', 'SGD momentum', nonNegativeNumber('--momentum'))
    .option('--weight-decay <x>', 'L2 weight decay', nonNegativeNumber('--weight-decay'))
    .option('--schedule <name>', 'constant, step or cosine', choice('--schedule', ['constant', 'step', 'cosine']))
    .option('--warmup <epochs>', 'epochs of linear learning-rate warm-up', nonNegativeNumber('--warmup'))
    .option('--width <n>', 'width knob of the architecture', positiveInt('--width'))
    // Both forms, so that the default stays undefined (a lone --no-augment would default to true, and gray
    // digits would be flipped and cropped): the recipe decides (on for color images, off for gray).
    .option('--augment', 'random crop/flip (default: on for color images, off for gray)')
    .option('--no-augment', 'no random crop/flip')
    .option('--init <file|zoo:name>', 'start from this trained model of the same architecture (a warm restart or fine-tuning) instead of random weights')
    .option('--resume', 'continue from <out>.ckpt if it exists')
    .option('--threads <n>', 'kernel threads', positiveInt('--threads'), 2)
    .action(async (o) => {
      const { runTrain } = await import('./train.js');
      await init({ threads: o.threads });
      await runTrain(o, process.argv.slice(2), (s) => console.error(s));
    });

  program
    .command('eval')
    .description('top-1 accuracy of a model on the test split of a dataset')
    .requiredOption('--model <file|zoo:name>', 'a .lowbit model file or committed weights (zoo:lenet5-mnist)')
    .requiredOption('--dataset <name|path>', 'mnist, fashion-mnist, cifar10, or a folder / .tar.gz of images')
    .option('--json', 'print {accuracy, samples, ms_per_image} as JSON')
    .option('--threads <n>', 'kernel threads', positiveInt('--threads'), 2)
    .action(async (o: { model: string; dataset: string; json?: boolean; threads: number }) => {
      const { runEval } = await import('./train.js');
      await init({ threads: o.threads });
      const r = await runEval(o);
      console.log(o.json ? JSON.stringify(r) : `accuracy ${(100 * r.accuracy).toFixed(2)}% on ${r.samples} test images, ${r.ms_per_image.toFixed(3)} ms/image`);
    });

  program
    .command('export')
    .description('write a model in a deployable form: lowbit = the packed file (weights at their bit width) the integer runtime runs; onnx = float ONNX (quantizers as exact float ops); onnx-qdq = int8 QDQ ONNX that onnxruntime fuses into QLinearConv. ONNX models take float32 NCHW pixels / 255 with a dynamic batch, normalize inside, output [N, classes]')
    .requiredOption('--model <file>', 'a quantized model (lowbit quantize --out); for --format onnx also a float model (.lowbit or zoo:name)')
    .requiredOption('--out <file>', 'output file')
    .option('--format <format>', 'lowbit (packed runtime file), onnx or onnx-qdq', 'lowbit')
    .action(async (o: { model: string; out: string; format: string }) => {
      const { runExport } = await import('./runtime.js');
      await init({});
      runExport(o, (s) => console.error(s));
    });

  program
    .command('inspect')
    .description('the execution plan of a quantized or packed model: which kernel (int8, binary XNOR-popcount, float) runs each layer, and why')
    .requiredOption('--model <file>', 'a quantized model (lowbit quantize) or packed file (lowbit export)')
    .option('--json', 'print the plan as JSON')
    .action(async (o: { model: string; json?: boolean }) => {
      const { runInspect } = await import('./runtime.js');
      await init({});
      runInspect(o, (s) => console.log(s));
    });

  program
    .command('onnx-ops')
    .description('the ONNX ops lowbit imports, with the ONNX conformance cases (libonnx-testdata) each passes, run now')
    .option('--details', 'also list the cases that do not pass, and why')
    .action(async (o: { details?: boolean }) => {
      const { conformance, conformanceTable, CONFORMANCE_DIR } = await import('../formats/onnx/conformance.js');
      await init({});
      const { results, ops } = conformance();
      if (results.length === 0) throw new LowbitError(`no conformance cases under ${CONFORMANCE_DIR}; install the Debian package libonnx-testdata`);
      console.log(conformanceTable(ops));
      if (o.details) for (const r of results) if (r.status !== 'pass') console.log(`${r.status}: ${r.name}: ${r.message}`);
    });

  program
    .command('quantizers')
    .description('every datatype lowbit implements, with its spec string, paper, bit widths and value set')
    .option('--json', 'print the table as JSON')
    .action(async (o: { json?: boolean }) => {
      const { quantizersTable } = await import('../quant/cli-table.js');
      console.log(quantizersTable(!!o.json));
    });

  program
    .command('quantize')
    .description('quantize a float model to a datatype: post-training with calibration, or quantization-aware training (--qat); writes a .lowbit file')
    .requiredOption('--model <file|zoo:name>', 'the float model: a .lowbit file or committed weights (zoo:lenet5-mnist)')
    .requiredOption('--spec <spec>', 'the datatype in the spec language: int8, int8:per-channel, w=twn,a=int8, bnn;conv1=fp32, ... (see `lowbit quantizers`)')
    .requiredOption('--out <file>', 'where to write the quantized model (.lowbit)')
    .option('--calib <dataset>', 'PTQ: dataset whose training images calibrate the activation ranges (default: the model\'s dataset)')
    .option('--calib-samples <n>', 'number of calibration images', positiveInt('--calib-samples'), 512)
    .option('--method <name>', `calibration observer: ${CALIBRATION_METHODS.join(', ')} (PTQ default minmax; QAT: minmax for 8 bits and more, mse below)`, choice('--method', [...CALIBRATION_METHODS]))
    .option('--percentile <p>', 'percentile of |x| kept by --method percentile', positiveNumber('--percentile'))
    .option('--no-bias-correction', 'PTQ: do not correct the output bias that quantized weights cause')
    .option('--qat', 'quantization-aware training instead of post-training quantization')
    .option('--epochs <n>', 'QAT epochs (default 3 fine-tuning, 5 from scratch)', positiveInt('--epochs'))
    .option('--dataset <name|path>', 'QAT: the dataset to train on (default: the model\'s dataset)')
    .option('--from-scratch', 'QAT: train from a random initialization (the default for fixed:*:stochastic, as Gupta et al.)')
    .option('--first-last <policy>', 'first and last layers: auto (the papers\' conventions: bnn, xnor, dorefa, ttq keep them fp32), fp32, or quantize', choice('--first-last', ['auto', 'fp32', 'quantize']), 'auto')
    .option('--seed <n>', 'seed of the calibration subset, QAT shuffling and stochastic quantizers', nonNegativeInt('--seed'), 0)
    .option('--resume', 'QAT: continue from the checkpoint <out>.ckpt (written after every epoch) if it exists')
    .option('--no-eval', 'do not evaluate the quantized model on the test split')
    .option('--json', 'print the result as JSON')
    .option('--budget <fraction>', 'with --spec auto: largest packed size as a fraction of the FP32 size (0.25 = a quarter); one weight width per layer is chosen and the spec written to <out>.spec', positiveNumber('--budget'))
    .option('--allocator <name>', 'with --spec auto: greedy (least output noise per byte, default) or lin (Lin et al. 2016 closed form)', choice('--allocator', ['greedy', 'lin']))
    .option('--act <datatype>', 'with --spec auto: the activation datatype of every layer (default int8)')
    .option('--bits <list>', 'with --spec auto: allowed weight widths, a range or a list (default 2-8)', (v: string) => v)
    .option('--per-channel', 'with --spec auto: per-channel weight scales (int<b>:per-channel)')
    .option('--threads <n>', 'kernel threads', positiveInt('--threads'), 2)
    .action(async (o) => {
      const { runQuantize } = await import('./quantize.js');
      if (typeof o.bits === 'string') o.bits = (await import('../quant/mixed-precision.js')).parseBits(o.bits);
      await init({ threads: o.threads });
      const r = await runQuantize(o, process.argv.slice(2), (s) => console.error(s));
      console.log(o.json ? JSON.stringify(r) : `${r.out}: ${r.effective_spec} (${r.mode.toUpperCase()})${r.accuracy === null ? '' : `, accuracy ${(100 * r.accuracy).toFixed(2)}% (float ${(100 * r.float_accuracy!).toFixed(2)}%)`}, ${r.bytes} bytes packed, ${r.compression}x`);
    });

  program
    .command('compare')
    .description('compare every datatype of the survey on a model: accuracy, size, BOPs, energy, MAC area, latency; writes DIR/results.json and DIR/report.html')
    .requiredOption('--model <file|zoo:name>', 'the float model: a .lowbit file or committed weights (zoo:lenet5-mnist)')
    .requiredOption('--dataset <name|path>', 'mnist, fashion-mnist, cifar10, or a folder / .tar.gz of images')
    .requiredOption('--out <dir>', 'directory for results.json and report.html')
    .option('--specs <list>', 'comma-separated specs (default: every family of the survey); a spec with commas (w=...,a=...) goes in its own --specs', specList)
    .option('--quick', 'a subset of the data and one short epoch per training technique (under 2 minutes for LeNet-5 on MNIST)')
    .option('--seed <n>', 'seed of the data subsets, training and stochastic quantizers', nonNegativeInt('--seed'), 0)
    .option('--resume', 'keep the finished rows of DIR/results.json and run the others; a QAT row killed part way continues from its last epoch (DIR/checkpoints/)')
    .option('--epochs <n>', 'QAT fine-tuning epochs (default 3; --quick 1)', positiveInt('--epochs'))
    .option('--low-bit-epochs <n>', 'QAT fine-tuning epochs of the binary and ternary techniques (default 10; --quick 1)', positiveInt('--low-bit-epochs'))
    .option('--binary-act-epochs <n>', 'QAT fine-tuning epochs of the binary-activation techniques, bnn and xnor (default twice --low-bit-epochs: 20; --quick 1)', positiveInt('--binary-act-epochs'))
    .option('--scratch-epochs <n>', 'epochs of the techniques trained from scratch (default 5; --quick 1)', positiveInt('--scratch-epochs'))
    .option('--calib-samples <n>', 'PTQ calibration images (default 1024; --quick 256)', positiveInt('--calib-samples'))
    .option('--method <name>', `PTQ calibration observer: ${CALIBRATION_METHODS.join(', ')}`, choice('--method', [...CALIBRATION_METHODS]))
    .option('--first-last <policy>', 'first and last layers: auto (the papers\' conventions), fp32, or quantize', choice('--first-last', ['auto', 'fp32', 'quantize']), 'auto')
    .option('--hist-layer <name>', 'the layer whose weight histogram the report shows (default: the largest conv layer)')
    .option('--mixed <budgets>', 'add mixed-precision rows auto:<allocator>:<budget>: one weight width per layer under each budget, a fraction of the FP32 size (0.25,0.125); int8 activations', (v: string) => v.split(',').map((x) => positiveNumber('--mixed')(x.trim())))
    .option('--mixed-allocator <name>', 'greedy (default), lin (Lin et al. 2016) or both', choice('--mixed-allocator', ['greedy', 'lin', 'both']))
    .option('--sensitivity <datatype>', 'also quantize each layer alone to this datatype (int4; w=int4: weights only), the others fp32; a chart in the report')
    .option('--threads <n>', 'kernel threads (with --jobs: in all, split between the jobs)', positiveInt('--threads'), 2)
    .option('--no-models', 'do not keep each row\'s quantized model in DIR/models/<spec>.lowbit')
    .option('--jobs <n>', 'rows made by n processes at once, each on threads/n kernel threads: faster for small models on several cores (its rows\' latencies are measured while the other jobs run)', positiveInt('--jobs'), 1)
    .action(async (o) => {
      const { runCompareCli } = await import('./compare.js');
      await init({ threads: o.threads });
      await runCompareCli(o, process.argv.slice(2), (s) => console.error(s), (s) => console.log(s));
    });

  program
    .command('analyze')
    .description('where quantization loses accuracy: per layer, the SQNR of the quantized weights and inputs and the error of the layer\'s output against the float model on real images; --sensitivity: each layer alone quantized, the accuracy it costs')
    .requiredOption('--model <file|zoo:name>', 'a float model (quantized with --spec by PTQ) or a quantized model file')
    .option('--dataset <name|path>', 'the images (default: the model\'s dataset)')
    .option('--spec <spec>', 'the datatype to analyze, or a .spec file (default int8; not with a quantized model)')
    .option('--sensitivity <datatype>', 'also quantize each layer alone to this datatype, the others fp32 (int4; w=int4 for weights only) and measure the accuracy delta')
    .option('--samples <n>', 'test images for the per-layer diff', positiveInt('--samples'), 256)
    .option('--test-samples <n>', 'test images for the sensitivity accuracy', positiveInt('--test-samples'), 2000)
    .option('--calib-samples <n>', 'calibration images', positiveInt('--calib-samples'), 512)
    .option('--method <name>', `calibration observer: ${CALIBRATION_METHODS.join(', ')}`, choice('--method', [...CALIBRATION_METHODS]))
    .option('--seed <n>', 'seed of the data subsets', nonNegativeInt('--seed'), 0)
    .option('--json', 'print the result as JSON')
    .option('--threads <n>', 'kernel threads', positiveInt('--threads'), 2)
    .action(async (o) => {
      const { runAnalyze, diffTable, sensitivityTable } = await import('./analyze.js');
      await init({ threads: o.threads });
      const r = await runAnalyze(o, (s) => console.error(s));
      console.log(o.json ? JSON.stringify(r) : `${r.model} on ${r.dataset}, spec ${r.spec}\n${diffTable(r.diff)}${r.sensitivity ? `\n\n${sensitivityTable(r.sensitivity)}` : ''}`);
    });

  program
    .command('serve')
    .description('the playground: draw a digit or pick a CIFAR-10 image, and the FP32, int8, ternary and binary models predict in your browser with lowbit\'s WebAssembly runtime; plus the charts of the committed results. Serves on 127.0.0.1; --build DIR writes it as a static folder instead')
    .option('--port <n>', 'port (0 = any free port)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer 0..65535, got "${v}"`);
      return n;
    }, 8080)
    .option('--host <address>', 'address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to your network)')
    .option('--build <dir>', 'write the static playground (index.html, playground.js, kernels.wasm, models, charts) to DIR and exit')
    .option('--quick', 'post-training quantization for every datatype (seconds) instead of one short fine-tuning pass for ternary and binary (about a minute, once; cached)')
    .action(async (o: { port: number; host?: string; build?: string; quick?: boolean }) => {
      const { runServe } = await import('../serve/cli.js');
      await init({});
      await runServe(o, (s) => console.error(s), (s) => console.log(s));
    });

  const bench = program.command('bench').description('measure speed against peers (onnxruntime-node, onnxruntime-web, tfjs-wasm) in the same run');
  bench
    .command('kernels')
    .description('GEMM 512^3, conv 3x3 64->64 56x56, LeNet conv 5x5 and conv backward: lowbit at 1 and 2 threads and the peers')
    .option('--json <file>', 'also write the rows {name, impl, threads, ms, gops} and the target ratios as JSON')
    .option('--runs <n>', 'timed runs per case (the median is reported)', positiveInt('--runs'), 15)
    .option('--warmup <n>', 'untimed runs before timing', positiveInt('--warmup'), 5)
    .option('--threads <list>', 'lowbit and peer thread counts to measure', intList, [1, 2])
    .option('--rounds <n>', 'repeat lowbit-then-peers n times and report medians over rounds (the machine may be noisy)', positiveInt('--rounds'), 3)
    .option('--no-peers', 'measure lowbit only')
    .action(async (o: { json?: string; runs: number; warmup: number; threads: number[]; peers: boolean; rounds: number }) => {
      const { runBenchKernels } = await import('./bench.js');
      await init({ threads: Math.max(...o.threads) });
      await runBenchKernels(o, (s) => console.log(s));
    });
  bench
    .command('runtime')
    .description('the integer/bitwise runtime: conv 3x3 64->64 56x56, LeNet-5, ResNet-20, ResNet-18 in fp32, int8, int4, ternary, binary, and onnxruntime-node/-web float and int8 on the same shapes')
    .option('--json <file>', 'also write the rows {name, impl, dtype, threads, ms, gops} and the target ratios as JSON')
    .option('--runs <n>', 'timed runs per case (the median is reported)', positiveInt('--runs'), 15)
    .option('--warmup <n>', 'untimed runs before timing', positiveInt('--warmup'), 3)
    .option('--threads <list>', 'thread counts to measure', intList, [1])
    .option('--only <list>', 'names, dtypes or impls to keep (e.g. conv3x3-64-56,resnet18,int8)', (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
    .option('--rounds <n>', 'repeat lowbit-then-peers n times and report medians over rounds (the machine may be noisy)', positiveInt('--rounds'), 1)
    .option('--no-peers', 'measure lowbit only')
    .action(async (o: { json?: string; runs: number; warmup: number; threads: number[]; only?: string[]; peers: boolean; rounds: number }) => {
      const { runBenchRuntime } = await import('./bench.js');
      await init({ threads: Math.max(...o.threads) });
      await runBenchRuntime(o, (s) => console.log(s));
    });
  bench
    .command('train')
    .description('training images/s (forward, backward, SGD momentum step) of LeNet-5 (batch 64) and ResNet-20 (batch 128): lowbit at 1 and 2 threads, tfjs-cpu and PyTorch CPU (when /usr/bin/python3 has torch) in the same run')
    .option('--json <file>', 'also write the rows {name, impl, threads, batch, images_per_s} and the target ratios as JSON')
    .option('--runs <n>', 'timed steps per case (the median is reported)', positiveInt('--runs'), 5)
    .option('--warmup <n>', 'untimed steps before timing', nonNegativeInt('--warmup'), 1)
    .option('--warmup-seconds <s>', 'lowbit and PyTorch: untimed steps for at least this long (V8 swaps optimized WebAssembly in from background threads)', nonNegativeNumber('--warmup-seconds'), 3)
    .option('--seconds <s>', 'instead of --runs: time steps for this many seconds per case (at least one step)', positiveNumber('--seconds'))
    .option('--threads <list>', 'lowbit and PyTorch thread counts to measure (tfjs-cpu is single-threaded)', intList, [1, 2])
    .option('--only <list>', 'models and/or impls to keep (lenet5, resnet20, lowbit, tfjs-cpu, pytorch)', (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean))
    .option('--profile', 'also time every kernel of lowbit\'s step at the largest thread count (where the time goes)')
    .option('--tfjs-full-batch', 'tfjs-cpu ResNet-20 at batch 128 too (about an hour per step) instead of batch 4 (its images/s do not depend on the batch)')
    .option('--no-peers', 'measure lowbit only')
    .action(async (o: { json?: string; runs: number; warmup: number; warmupSeconds: number; seconds?: number; threads: number[]; only?: string[]; peers: boolean; profile?: boolean; tfjsFullBatch?: boolean }) => {
      const { runBenchTrain } = await import('./bench.js');
      await init({ threads: Math.max(...o.threads) });
      await runBenchTrain(o, (s) => console.log(s));
    });
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; commander already printed the message.
      return e.exitCode === 0 ? 0 : 2;
    }
    // running out of WebAssembly memory is the user's model or batch being too large, not a bug
    if (e instanceof LowbitError || e instanceof OutOfMemoryError) {
      console.error(`lowbit: ${e.message.replace(/^lowbit: /, '')}`);
      if (program.opts().verbose) console.error(e.stack);
      return e instanceof LowbitError ? e.exitCode : 1;
    }
    console.error(e instanceof Error && !program.opts().verbose ? `lowbit: unexpected error (a bug; please report it): ${e.stack}` : e);
    return 1;
  } finally {
    await shutdown();
  }
}

// Run when executed (directly or through the npm bin link), not when tests import buildProgram().
let entry = '';
try {
  entry = realpathSync(process.argv[1] ?? '');
} catch {
  // not started from a file (node -e, a REPL)
}
if (entry === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv);
