// A .tar.gz dataset is extracted once into the cache folder and reused: the folder is named after the
// archive's path, size and modification time, filled under a temporary name and renamed when complete,
// so an interrupted extraction is never mistaken for a finished one.
//
// The archive is parsed by the `tar` package; the files are written here with synchronous calls, because
// tar's own Unpack was measured 2-4x slower on 60,000 small files (17-40 s against 4-11 s on this
// machine, whose disk is shared and noisy; GNU tar: 1.4 s). Only regular files are written, and only at relative paths without
// `..`: links, devices and absolute paths in an archive are skipped.

import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { LowbitError } from '../errors.js';
import type { ProgressSink } from './progress.js';

export function isTarGz(path: string): boolean {
  return /\.(tar\.gz|tgz)$/i.test(path);
}

/** A short stable id of a file's identity (resolved path, size, mtime) plus extra settings. */
export function fileKey(path: string, extra: unknown = null): string {
  const st = statSync(path);
  return createHash('sha256')
    .update(JSON.stringify([resolve(path), st.size, Math.floor(st.mtimeMs), extra]))
    .digest('hex')
    .slice(0, 16);
}

const COMPLETE = '.lowbit-complete';
const STREAM_ABOVE = 16 << 20;

/** The entry's path inside `root`, or null when it must not be written (absolute, `..`, empty). */
function safePath(root: string, entryPath: string): string | null {
  const parts = entryPath.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || /^([a-zA-Z]:)?[\\/]/.test(entryPath) || parts.some((p) => p === '..' || p.includes('\0'))) return null;
  return join(root, ...parts);
}

/** Extract `archive` under `<cache>/extracted/` (once) and return the folder. */
export async function extractArchive(archive: string, cache: string, progress?: ProgressSink): Promise<string> {
  const name = basename(archive).replace(/\.(tar\.gz|tgz)$/i, '');
  const dest = join(cache, 'extracted', `${name}-${fileKey(archive)}`);
  if (existsSync(join(dest, COMPLETE))) return dest;
  const tmp = `${dest}.tmp-${process.pid}`;
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
  } catch (e) {
    throw new LowbitError(`cannot create ${tmp} to extract ${archive} (${(e as Error).message}); set LOWBIT_CACHE to a writable folder`);
  }
  const total = statSync(archive).size;
  let files = 0;
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const made = new Set<string>();
      const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(String(e)));
      const parser = new Parser({
        onReadEntry: (entry: ReadEntry) => {
          const target = entry.type === 'File' || entry.type === 'OldFile' ? safePath(tmp, entry.path) : null;
          if (!target) {
            entry.resume();
            return;
          }
          try {
            const dir = dirname(target);
            if (!made.has(dir)) {
              mkdirSync(dir, { recursive: true });
              made.add(dir);
            }
          } catch (e) {
            entry.resume();
            fail(e);
            return;
          }
          // Small files are gathered and written in one call (measured 2.5x faster than writing each chunk
          // as it arrives); large ones are streamed to keep memory bounded.
          if (entry.size <= STREAM_ABOVE) {
            const chunks: Buffer[] = [];
            entry.on('data', (chunk: Buffer) => chunks.push(chunk));
            entry.on('end', () => {
              try {
                writeFileSync(target, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
                files++;
              } catch (e) {
                fail(e);
              }
            });
            return;
          }
          let fd: number;
          try {
            fd = openSync(target, 'w');
          } catch (e) {
            entry.resume();
            fail(e);
            return;
          }
          entry.on('data', (chunk: Buffer) => {
            for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
          });
          entry.on('end', () => {
            closeSync(fd);
            files++;
          });
        },
      });
      const input = createReadStream(archive);
      let done = 0, last = 0;
      input.on('data', (chunk) => {
        done += chunk.length;
        if (done - last >= 1 << 20 || done === total) {
          last = done;
          progress?.update({ phase: 'extract', done, total, unit: 'bytes' });
        }
      });
      input.on('error', fail);
      parser.on('error', fail);
      // Damaged entries are fatal; informational notes (e.g. an ignored header type) are not.
      parser.on('warn', (code: string, message: string) => {
        if (code !== 'TAR_ENTRY_INFO') fail(new Error(`${code}: ${message}`));
      });
      parser.on('end', () => resolvePromise());
      input.pipe(parser);
    });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new LowbitError(
      `${archive}: cannot extract (${(e as Error).message}); expected a .tar.gz archive of a dataset folder — ` +
        're-download it, or extract it yourself and give the folder',
    );
  } finally {
    progress?.stop();
  }
  if (files === 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new LowbitError(`${archive}: the archive holds no files; expected a .tar.gz archive of a dataset folder`);
  }
  writeFileSync(join(tmp, COMPLETE), `${archive}\n`);
  if (existsSync(join(dest, COMPLETE))) {
    // Another process finished the same extraction meanwhile: keep its folder (it may be reading it).
    rmSync(tmp, { recursive: true, force: true });
    return dest;
  }
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
  return dest;
}

/**
 * Read the regular files of a .tar.gz whose paths `want` accepts into memory (path -> bytes), without
 * extracting anything: for tests and tools that need a few images out of a large archive.
 */
export async function readArchiveEntries(archive: string, want: (path: string) => boolean): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const parser = new Parser({
        strict: true,
        onReadEntry: (entry: ReadEntry) => {
          if (entry.type !== 'File' || !want(entry.path)) {
            entry.resume();
            return;
          }
          const chunks: Buffer[] = [];
          entry.on('data', (c: Buffer) => chunks.push(c));
          entry.on('end', () => out.set(entry.path, Buffer.concat(chunks)));
        },
      });
      const input = createReadStream(archive);
      input.on('error', reject);
      parser.on('error', reject);
      parser.on('end', () => resolvePromise());
      input.pipe(parser);
    });
  } catch (e) {
    throw new LowbitError(`${archive}: cannot read the archive (${(e as Error).message}); expected a .tar.gz file`);
  }
  return out;
}
