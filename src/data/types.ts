// What every dataset loader returns: two splits of CHW u8 images with integer labels.

/** N images as N*C*H*W u8 (each CHW, row-major) and their labels (class indices into Dataset.classes). */
export interface Split {
  images: Uint8Array;
  labels: Uint8Array | Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** Per-channel mean and standard deviation of pixel values scaled to [0, 1]. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

export interface Dataset {
  /** `mnist`, `fashion-mnist`, `cifar10`, or the folder name of an image-folder dataset. */
  name: string;
  classes: string[];
  train: Split;
  test: Split;
  /** Mean/std per channel computed from the train split (use it, or STANDARD_STATS, to normalize). */
  stats: ChannelStats;
  /** Where it was read from (a file or folder), for messages and reports. */
  source: string;
  /** True when the decoded images came from lowbit's binary cache. */
  fromCache?: boolean;
}

/** Progress of long work (extracting an archive, decoding images). */
export interface ProgressEvent {
  phase: 'extract' | 'decode';
  done: number;
  total: number;
  unit: 'bytes' | 'images';
}

export type ProgressCallback = (event: ProgressEvent) => void;
