// Learning-rate schedules, as functions of the (fractional) epoch so that a resumed run gets the same
// rates: linear warm-up, then constant, step decay or cosine annealing (Loshchilov & Hutter 2017).

export interface ScheduleConfig {
  kind: 'constant' | 'step' | 'cosine';
  baseLr: number;
  epochs: number;
  /** Epochs of linear warm-up from baseLr/10 to baseLr. */
  warmupEpochs?: number;
  /** step: multiply by `gamma` at each of these epochs. */
  milestones?: number[];
  gamma?: number;
  /** cosine: the final learning rate. */
  minLr?: number;
}

export function learningRate(c: ScheduleConfig, epoch: number): number {
  const warm = c.warmupEpochs ?? 0;
  if (epoch < warm) return c.baseLr * (0.1 + (0.9 * epoch) / warm);
  switch (c.kind) {
    case 'constant':
      return c.baseLr;
    case 'step': {
      const passed = (c.milestones ?? []).filter((m) => epoch >= m).length;
      return c.baseLr * (c.gamma ?? 0.1) ** passed;
    }
    case 'cosine': {
      const t = Math.min(1, (epoch - warm) / Math.max(1e-9, c.epochs - warm));
      const min = c.minLr ?? 0;
      return min + 0.5 * (c.baseLr - min) * (1 + Math.cos(Math.PI * t));
    }
  }
}
