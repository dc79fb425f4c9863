// Image-folder datasets: `<root>/{train,test}/<class>/*.jpg|png`, or `<root>/<class>/*` with a held-out
// test split chosen deterministically. Classes are the sub-folder names in code-point order (as
// torchvision's ImageFolder sorts them); files are listed in code-point order too, so the same folder gives
// the same dataset on every machine.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LowbitError } from '../errors.js';
import { Random } from '../tensor/random.js';
import { mixSeed } from './seed.js';

export const IMAGE_EXTENSIONS = /\.(jpe?g|png)$/i;

export interface FileList {
  files: string[];
  labels: Int32Array;
}

export interface ImageFolderListing {
  layout: 'train-test' | 'classes';
  root: string;
  classes: string[];
  train: FileList;
  test: FileList;
}

export interface ListOptions {
  /** For the `<root>/<class>/*` layout: the fraction of each class held out as the test split. Default 0.2. */
  testFraction?: number;
  /** Seed of the held-out choice. Default 0. */
  splitSeed?: number;
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function entries(dir: string): { dirs: string[]; images: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new LowbitError(`${dir}: cannot list the folder (${(e as Error).message}); check the path`);
  }
  const dirs: string[] = [], images: string[] = [];
  for (const n of names.sort(byCodePoint)) {
    if (n.startsWith('.')) continue;
    const st = statSync(join(dir, n), { throwIfNoEntry: false });
    if (st?.isDirectory()) dirs.push(n);
    else if (st?.isFile() && IMAGE_EXTENSIONS.test(n)) images.push(n);
  }
  return { dirs, images };
}

/** Does `dir` look like an image folder (train/test or class sub-folders holding images)? */
export function looksLikeImageFolder(dir: string): boolean {
  const { dirs, images } = entries(dir);
  // Images without class folders count too: listing it then explains what layout is expected.
  if (dirs.includes('train') || images.length > 0) return true;
  return dirs.some((d) => entries(join(dir, d)).images.length > 0);
}

function listClasses(dir: string, what: string): Map<string, string[]> {
  const { dirs, images } = entries(dir);
  if (dirs.length === 0) {
    const hint = images.length > 0 ? ` (it holds ${images.length} images directly: put them in one sub-folder per class)` : '';
    throw new LowbitError(`${dir}: no class folders in ${what}${hint}; expected <root>/<class>/*.jpg|png or <root>/{train,test}/<class>/*.jpg|png`);
  }
  const out = new Map<string, string[]>();
  for (const c of dirs) {
    const files = entries(join(dir, c)).images.map((f) => join(dir, c, f));
    if (files.length === 0) throw new LowbitError(`${join(dir, c)}: class folder without .jpg/.jpeg/.png images; add images or remove the folder`);
    out.set(c, files);
  }
  return out;
}

function flatten(classes: string[], byClass: Map<string, string[]>, where: string): FileList {
  const files: string[] = [], labels: number[] = [];
  for (const [name, list] of byClass) {
    const label = classes.indexOf(name);
    if (label < 0) throw new LowbitError(`${where}/${name}: class '${name}' is not among the training classes (${classes.join(', ')}); rename or remove it`);
    for (const f of list) {
      files.push(f);
      labels.push(label);
    }
  }
  return { files, labels: Int32Array.from(labels) };
}

/** List the images of an image folder and their labels. */
export function listImageFolder(root: string, opts: ListOptions = {}): ImageFolderListing {
  const { dirs } = entries(root);
  if (dirs.includes('train') && dirs.includes('test')) {
    const train = listClasses(join(root, 'train'), 'train/');
    const test = listClasses(join(root, 'test'), 'test/');
    const classes = [...train.keys()];
    return { layout: 'train-test', root, classes, train: flatten(classes, train, join(root, 'train')), test: flatten(classes, test, join(root, 'test')) };
  }
  if (dirs.includes('train')) {
    throw new LowbitError(`${root}: has train/ but no test/; add test/<class>/ folders, or put the class folders directly in ${root}`);
  }
  const byClass = listClasses(root, 'the folder');
  const fraction = opts.testFraction ?? 0.2;
  if (!(fraction > 0 && fraction < 1)) throw new LowbitError(`test fraction ${fraction} must be between 0 and 1 (exclusive)`);
  const classes = [...byClass.keys()];
  const train = new Map<string, string[]>(), test = new Map<string, string[]>();
  classes.forEach((c, k) => {
    const files = byClass.get(c)!;
    // Each class keeps round(n*fraction) images for testing (at least one when it has two or more), picked
    // by a permutation seeded with (splitSeed, class index); both splits keep the files' sorted order.
    const nTest = files.length < 2 ? 0 : Math.min(files.length - 1, Math.max(1, Math.round(files.length * fraction)));
    const held = new Uint8Array(files.length);
    const perm = new Random(mixSeed(opts.splitSeed ?? 0, k, 0x5e1d)).permutation(files.length);
    for (let i = 0; i < nTest; i++) held[perm[i]] = 1;
    train.set(c, files.filter((_, i) => !held[i]));
    test.set(c, files.filter((_, i) => held[i]));
  });
  return { layout: 'classes', root, classes, train: flatten(classes, train, root), test: flatten(classes, test, root) };
}
