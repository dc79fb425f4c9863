// Files are written whole or not at all: write a temporary file beside the target, fsync it, rename it
// over the target. A crash leaves either the old file or the new one, never half of one.

import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Remove a file and the temporaries (`.<name>.<pid>.tmp`) that killed atomic writes of it left beside it. */
export function removeWithTemporaries(path: string): void {
  rmSync(path, { force: true });
  const dir = dirname(path), prefix = `.${basename(path)}.`;
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    if (f.startsWith(prefix) && f.endsWith('.tmp') && /^\d+$/.test(f.slice(prefix.length, -4))) rmSync(join(dir, f), { force: true });
  }
}
