// What a playground build holds (manifest.json): written by src/serve/playground.ts, read by the page.

export interface ManifestVariant {
  key: string;
  label: string;
  spec: string;
  /** ptq: post-training quantization; qat: one short pass of quantization-aware training. */
  mode: 'ptq' | 'qat';
  /** Packed runtime file, relative to the build folder. */
  file: string;
  bytes: number;
  /** Top-1 accuracy of this file on the dataset's whole test split (measured at build time). */
  accuracy: number;
}

export interface ManifestModel {
  id: string;
  title: string;
  dataset: string;
  input: 'draw' | 'pick';
  /** Why the model is not in this build (its weights were missing), shown instead of it. */
  missing?: string;
  classes?: string[];
  /** [1, C, H, W] */
  inputShape?: number[];
  preprocess?: { mean: number[]; std: number[] };
  variants?: ManifestVariant[];
  /** Test images to pick from: raw u8 CHW images back to back. */
  samples?: { file: string; count: number; labels: number[] };
}

export interface ManifestChart {
  /** Folder name under docs/results. */
  results: string;
  /** The comparison: "<model> on <dataset>". */
  heading: string;
  /** What the chart shows. */
  title: string;
  file: string;
}

export interface Manifest {
  lowbit: string;
  built: string;
  models: ManifestModel[];
  charts: ManifestChart[];
}
