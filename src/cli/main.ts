#!/usr/bin/env node
// The lowbit command line. Exit codes: 0 ok, 1 failed, 2 bad usage.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { LowbitError } from '../errors.js';
import { init, shutdown } from '../tensor/backend.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

function intList(v: string): number[] {
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got "${v}"`);
  return list;
}

export function buildProgram(): Command {
  const program = new Command()
    .name('lowbit')
    .description('Quantize CNNs to low-bit datatypes, compare the techniques, run them with integer and bitwise WebAssembly kernels.')
    .version(pkg.version)
    .option('--verbose', 'print stack traces of errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const bench = program.command('bench').description('measure speed against peers (onnxruntime-node, onnxruntime-web, tfjs-wasm) in the same run');
  bench
    .command('kernels')
    .description('GEMM 512^3, conv 3x3 64->64 56x56, LeNet conv 5x5 and conv backward: lowbit at 1 and 2 threads and the peers')
    .option('--json <file>', 'also write the rows {name, impl, threads, ms, gops} and the target ratios as JSON')
    .option('--runs <n>', 'timed runs per case (the median is reported)', positiveInt('--runs'), 15)
    .option('--warmup <n>', 'untimed runs before timing', positiveInt('--warmup'), 5)
    .option('--threads <list>', 'lowbit and peer thread counts to measure', intList, [1, 2])
    .option('--no-peers', 'measure lowbit only')
    .action(async (o: { json?: string; runs: number; warmup: number; threads: number[]; peers: boolean }) => {
      const { runBenchKernels } = await import('./bench.js');
      await init({ threads: Math.max(...o.threads) });
      await runBenchKernels(o, (s) => console.log(s));
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
    if (e instanceof LowbitError) {
      console.error(`lowbit: ${e.message.replace(/^lowbit: /, '')}`);
      if (program.opts().verbose) console.error(e.stack);
      return e.exitCode;
    }
    console.error(e instanceof Error && !program.opts().verbose ? `lowbit: unexpected error (a bug; please report it): ${e.stack}` : e);
    return 1;
  } finally {
    await shutdown();
  }
}

process.exitCode = await main(process.argv);
