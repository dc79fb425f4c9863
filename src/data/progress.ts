// Progress for long loads: the caller's callback, else a cli-progress bar on stderr when it is a terminal.

import cliProgress from 'cli-progress';
import type { ProgressCallback, ProgressEvent } from './types.js';

export interface ProgressSink {
  update(event: ProgressEvent): void;
  /** Finish the current bar, if any. */
  stop(): void;
}

const LABELS: Record<ProgressEvent['phase'], string> = { extract: 'extracting', decode: 'decoding' };

export function progressSink(callback?: ProgressCallback, showBar = true): ProgressSink {
  if (callback) return { update: callback, stop() {} };
  if (!showBar || !process.stderr.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | null = null;
  let phase: string | null = null;
  const stop = () => {
    bar?.stop();
    bar = null;
    phase = null;
  };
  return {
    update(e) {
      if (phase !== e.phase) {
        stop();
        phase = e.phase;
        const value = e.unit === 'bytes' ? '{percentage}%' : '{value}/{total} images';
        bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${LABELS[e.phase]} [{bar}] ${value} | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(e.total, e.done);
      } else {
        bar?.update(e.done);
      }
    },
    stop,
  };
}
