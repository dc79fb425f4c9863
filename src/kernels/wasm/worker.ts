// A kernel worker thread: instantiates the kernel module on the engine's shared memory, then waits for
// jobs on the control block's sequence word and claims units of each (the module's `work`), until told to
// quit. Waiting spins briefly (kernels often come back to back), then sleeps in Atomics.wait.

import { parentPort, workerData } from 'node:worker_threads';
import { CTRL, type KernelExports } from './abi.js';

interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: number;
  t: number;
  /** Microseconds to poll for the next job before sleeping. */
  spinMicros: number;
}

const init = workerData as WorkerInit;
const instance = new WebAssembly.Instance(init.module, {
  env: { memory: init.memory, abort: () => { throw new Error('lowbit: wasm abort'); } },
});
const ex = instance.exports as unknown as KernelExports;
// The control block never moves and the memory never shrinks: a view made now stays valid.
const words = new Int32Array(init.memory.buffer, init.ctrl, CTRL.bytes / 4);
const SEQ = CTRL.seq >>> 2, NT = CTRL.nt >>> 2, QUIT = CTRL.quit >>> 2, DONE = CTRL.done >>> 2;
parentPort!.postMessage({ ready: true });

/** Wait until the sequence word moves past `seen`: poll for spinMicros, then sleep. */
function nextJob(seen: number): number {
  let seq = Atomics.load(words, SEQ);
  if (seq !== seen) return seq;
  const until = performance.now() + init.spinMicros / 1000;
  for (let polls = 1; ; polls++) {
    seq = Atomics.load(words, SEQ);
    if (seq !== seen) return seq;
    if ((polls & 63) === 0 && performance.now() > until) break;
  }
  while (seq === seen) {
    Atomics.wait(words, SEQ, seen);
    seq = Atomics.load(words, SEQ);
  }
  return seq;
}

let seen = Atomics.load(words, SEQ);
while (Atomics.load(words, QUIT) === 0) {
  const seq = nextJob(seen);
  seen = seq;
  if (Atomics.load(words, QUIT) !== 0) break;
  if (init.t >= Atomics.load(words, NT)) continue;
  for (;;) {
    try {
      ex.work(init.ctrl, init.t, seq);
      break;
    } catch (e) {
      // this thread's unit threw: flag it (the caller throws) and keep claiming
      parentPort!.postMessage({ error: String((e as Error)?.stack ?? e) });
      ex.unitFailed(init.ctrl, init.t);
    }
  }
  // the caller may be asleep waiting for the last unit
  Atomics.notify(words, DONE);
}
