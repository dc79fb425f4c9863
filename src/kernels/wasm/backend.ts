// The calling thread's side of the job protocol (assembly/index.ts, worker.ts): writing a job's arguments
// into the control block, running it alone or publishing it to the workers and claiming units with them.

import type { EngineMemory, Ptr } from '../memory.js';
import { CTRL, type Job, type KernelExports } from './abi.js';
import { callerCanBlock, type KernelWorker } from './loader.js';

// How long a waiting thread polls before it sleeps in Atomics.wait. Waking a sleeping thread costs tens
// of microseconds on an idle machine and milliseconds on a busy one; polling longer than that only burns a
// core another process may need. A browser's main thread may not block and keeps polling.
const SPIN_CALLER_MICROS = 100;
export const SPIN_WORKER_MICROS = 150;

export class WasmBackend {
  readonly ex: KernelExports;
  readonly ctrl: Ptr;
  private argsView!: Float64Array;
  private arrView!: Int32Array;
  private wordsView!: Int32Array;
  private viewBuffer: ArrayBufferLike | null = null;
  nt = 1;
  readonly canBlock: boolean;
  /** Rows of the float register tiles (GEMM, convolution): 5 with fused multiply-add, else 4. */
  readonly tileRows: number;

  constructor(readonly mem: EngineMemory, ex: KernelExports, readonly workers: KernelWorker[], ctrl: Ptr, fma = false) {
    this.ex = ex;
    this.ctrl = ctrl;
    this.canBlock = callerCanBlock();
    this.nt = workers.length + 1;
    // Without FMA the product takes a register of its own and 5-row tiles spill (assembly/gemm.ts).
    this.tileRows = fma ? 5 : 4;
    this.words()[CTRL.tileRows >>> 2] = this.tileRows;
  }

  private views(): void {
    const buf = this.mem.memory.buffer;
    if (buf !== this.viewBuffer) {
      this.viewBuffer = buf;
      this.argsView = new Float64Array(buf, this.ctrl + CTRL.args, 32);
      this.arrView = new Int32Array(buf, this.ctrl + CTRL.arr, 64);
      this.wordsView = new Int32Array(buf, this.ctrl, CTRL.bytes / 4);
    }
  }

  private words(): Int32Array {
    this.views();
    return this.wordsView;
  }

  /** Write scalar job arguments (slot i = args[i]). */
  args(...values: number[]): void {
    this.views();
    const a = this.argsView;
    for (let i = 0; i < values.length; i++) a[i] = values[i];
  }
  setArg(i: number, v: number): void {
    this.views();
    this.argsView[i] = v;
  }
  ints(values: number[]): void {
    this.views();
    this.arrView.set(values);
  }

  /**
   * Run the job written into the control block, split into `units` units (see assembly/index.ts), on this
   * thread and the workers (nt > 1 and units > 1), or on this thread alone.
   */
  run(job: Job, units: number, threads = this.nt): void {
    const nt = Math.min(threads, this.nt);
    units = Math.max(1, Math.min(0xffff, Math.floor(units)));
    if (nt <= 1 || units === 1) {
      this.ex.runAll(this.ctrl, job, units);
      return;
    }
    const words = this.words();
    words[CTRL.nt >>> 2] = nt;
    const seq = this.ex.publish(this.ctrl, job, units);
    Atomics.notify(words, CTRL.seq >>> 2);
    const DONE = CTRL.done >>> 2;
    let target = units;
    let failure: unknown = null;
    try {
      this.ex.work(this.ctrl, 0, seq);
    } catch (e) {
      failure = e;
      target = this.ex.cancel(this.ctrl, seq); // units claimed so far, ours included, must all finish
      Atomics.add(words, DONE, 1); // ours
    }
    // wait for units still running on workers: poll, then sleep (a worker notifies after its last unit)
    let until = 0;
    for (let polls = 0; ; polls++) {
      const done = Atomics.load(words, DONE);
      if (done >= target) break;
      if ((polls & 63) === 63 && this.canBlock) {
        const now = performance.now();
        if (until === 0) until = now + SPIN_CALLER_MICROS / 1000;
        else if (now > until) Atomics.wait(words, DONE, done, 5);
      }
    }
    if (failure) throw failure;
    const err = Atomics.load(words, CTRL.err >>> 2);
    if (err !== 0) {
      const w = this.workers[err - 2];
      throw new Error(`lowbit: kernel job ${job} failed in worker thread ${err - 1}${w?.lastError ? `: ${w.lastError}` : ''}`);
    }
  }

  /**
   * How many units to split `work` into: 1 on one thread or below two grains, else one per `grain` of
   * work (at most `cap`). A grain should take ~20-50 us: claiming a unit costs well under a microsecond,
   * and a worker that is not running when the job is published simply takes no unit.
   */
  units(work: number, grain: number, cap = 256): number {
    if (this.nt <= 1 || work < 2 * grain) return 1;
    return Math.max(1, Math.min(cap, 0xffff, Math.ceil(work / grain)));
  }
}

