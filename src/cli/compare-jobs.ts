// `lowbit compare --jobs N`: the rows run in N child processes at once, each a `lowbit compare` of one row in
// DIR/jobs/<row>/, the threads split between them. A small model trains faster as separate processes on separate
// cores than as one process splitting every kernel across threads (ResNet-20 training here, bench train: 95.0
// images/s on 1 thread, 141.5 on 2, so 2 jobs of 1 thread should do 1.34x the work of 1 process of 2). The parent merges each finished row into DIR/results.json atomically, so an interrupted run
// keeps them and --resume skips them; a killed child's QAT continues from its checkpoint in DIR/jobs/<row>/. The
// FP32 row, the sensitivity analysis and the report are then made by the parent, as without --jobs.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Dataset } from '../data/index.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { machineInfo, modelFileNames, orderedRows, readPrevious, weightsDigest, type CompareResults, type CompareRow } from '../quant/compare.js';
import type { Allocator } from '../quant/mixed-precision.js';
import type { ModelSource } from '../quant/quantized.js';
import type { CompareCliOptions } from './compare.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface RowJobsOptions {
  cli: CompareCliOptions;
  source: ModelSource;
  dataset: Dataset;
  /** Every row of the comparison, in order (compareRows). */
  names: readonly string[];
  mixed: ReadonlyMap<string, { allocator: Allocator; budget: number }>;
  command: string;
  jobs: number;
  /** Kernel threads in all: each child gets threads / jobs (at least 1). */
  threads: number;
  log: (line: string) => void;
  /** Called after each finished row is merged into DIR/results.json (the CLI rewrites DIR/report.html). */
  onWrite?: (results: CompareResults) => void;
}

/** The arguments of the child `lowbit compare` that makes one row in `dir`. */
function childArguments(row: string, dir: string, o: RowJobsOptions, threads: number): string[] {
  const c = o.cli;
  const args = ['compare', '--model', c.model, '--dataset', c.dataset, '--out', dir, '--seed', String(c.seed), '--resume', '--threads', String(threads)];
  const m = o.mixed.get(row);
  // A mixed row comes with the FP32 row (the cheapest there is): a comparison has at least one spec.
  args.push(...(m ? ['--specs', 'fp32', '--mixed', String(m.budget), '--mixed-allocator', m.allocator] : ['--specs', row]));
  if (c.quick) args.push('--quick');
  const numbers: [string, number | undefined][] = [
    ['--epochs', c.epochs], ['--low-bit-epochs', c.lowBitEpochs], ['--binary-act-epochs', c.binaryActEpochs], ['--scratch-epochs', c.scratchEpochs], ['--calib-samples', c.calibSamples],
  ];
  for (const [flag, v] of numbers) if (v !== undefined) args.push(flag, String(v));
  if (c.method) args.push('--method', c.method);
  if (c.firstLast) args.push('--first-last', c.firstLast);
  if (c.histLayer) args.push('--hist-layer', c.histLayer);
  if (c.models === false) args.push('--no-models');
  if (process.argv.includes('--no-relaxed-simd')) args.unshift('--no-relaxed-simd');
  return args;
}

/** The row a child wrote to its results.json, if it got that far. */
function childRow(dir: string, row: string): CompareRow | undefined {
  try {
    const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as CompareResults;
    return r.rows.find((x) => x.spec === row);
  } catch {
    return undefined;
  }
}

/**
 * Runs the rows still to do (all but fp32 and, with --resume, those already in DIR/results.json) in child processes
 * and returns the rows they made, failed ones included.
 */
export async function runRowJobs(o: RowJobsOptions): Promise<CompareRow[]> {
  const c = o.cli;
  const path = join(c.out, 'results.json');
  const jobsDir = join(c.out, 'jobs');
  const earlier = readPrevious(path, { resume: c.resume, source: o.source, modelName: c.model, dataset: o.dataset, seed: c.seed, quick: !!c.quick });
  if (!c.resume) rmSync(jobsDir, { recursive: true, force: true }); // no stale checkpoints from another run
  const queue = o.names.filter((n) => n !== 'fp32' && !earlier.rows.some((r) => r.spec === n));
  if (!queue.length) return [];

  const rowBySpec = new Map(earlier.rows.map((r) => [r.spec, r]));
  const modelFiles = modelFileNames(o.names);
  const made: CompareRow[] = [];
  const results: CompareResults = {
    model: c.model, weights_sha256: weightsDigest(o.source.model), dataset: o.dataset.name, command: o.command, seed: c.seed, seconds: 0, machine: machineInfo(), rows: [],
  };
  const started = performance.now();
  const write = () => {
    results.rows = orderedRows(o.names, rowBySpec);
    results.seconds = +(earlier.seconds + (performance.now() - started) / 1000).toFixed(1);
    writeFileAtomic(path, JSON.stringify(results, null, 2) + '\n');
    o.onWrite?.(results);
  };

  const jobs = Math.min(o.jobs, queue.length);
  const threads = Math.max(1, Math.floor(o.threads / o.jobs));
  o.log(`${queue.length} rows in ${jobs} processes at a time, ${threads} kernel thread${threads > 1 ? 's' : ''} each (--jobs); their lines start with [row]. ` +
    'Latencies are measured in the jobs, at their thread count, while the other jobs run.');
  mkdirSync(jobsDir, { recursive: true });

  const running = new Set<ChildProcess>();
  let stopping: NodeJS.Signals | null = null;
  const stop = (signal: NodeJS.Signals) => {
    // The children checkpoint every epoch: --resume continues them.
    stopping = signal;
    for (const child of running) child.kill('SIGTERM');
    if (!running.size) process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await new Promise<void>((resolve) => {
      let next = 0;
      const launch = () => {
        while (running.size < jobs && next < queue.length) start(queue[next++]);
        if (!running.size) resolve();
      };
      const start = (row: string) => {
        const dir = join(jobsDir, encodeURIComponent(row));
        const t0 = performance.now();
        const child = spawn(process.execPath, [...process.execArgv, MAIN, ...childArguments(row, dir, o, threads)], { stdio: ['ignore', 'ignore', 'pipe'] });
        running.add(child);
        const tail: string[] = [];
        createInterface({ input: child.stderr! }).on('line', (line) => {
          o.log(`[${row}] ${line}`);
          tail.push(line);
          if (tail.length > 3) tail.shift();
        });
        let spawnError: Error | undefined;
        child.on('error', (e) => (spawnError = e));
        child.on('close', (code, signal) => {
          running.delete(child);
          if (stopping) {
            if (!running.size) process.exit(stopping === 'SIGINT' ? 130 : 143);
            return;
          }
          let r = childRow(dir, row);
          if (r) {
            if (r.model_file) {
              // the child's models/<file> under the name the whole comparison gives it
              const file = modelFiles.get(row)!;
              mkdirSync(join(c.out, 'models'), { recursive: true });
              renameSync(join(dir, r.model_file), join(c.out, file));
              r = { ...r, model_file: file };
            }
            rmSync(dir, { recursive: true, force: true });
          } else {
            // Its directory stays: --resume continues the row from its last checkpoint.
            const why = spawnError ? `could not start: ${spawnError.message}` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
            const last = tail.filter((l) => l.trim()).pop();
            o.log(`[${row}] FAILED: its process ${why}`);
            r = {
              spec: row, accuracy: null, delta: null, weight_bits: null, act_bits: null, bytes: null, compression: null, bops: null, energy_uj: null, latency_ms: null,
              seconds: Math.round((performance.now() - t0) / 100) / 10, error: `its process ${why}${last ? `: ${last.replace(/^lowbit: /, '')}` : ''}`,
            };
          }
          rowBySpec.set(row, r);
          made.push(r);
          write();
          o.log(`[${row}] ${r.error ? 'failed' : 'done'}: ${results.rows.length} of ${o.names.length} rows in results.json${o.onWrite ? ' and report.html' : ''}`);
          launch();
        });
      };
      launch();
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  try {
    rmdirSync(jobsDir); // empty unless a job failed and left its checkpoints for --resume
  } catch {
    // kept
  }
  return made;
}
