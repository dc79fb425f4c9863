// npm's `prepare` hook: build unless every build output is newer than every source. `npm ci` on a fresh clone
// builds; `npx lowbit` run inside the repository installs it as a file: package and runs `prepare` again, which
// rebuilt everything (about 75 s) before the command started. `npm run build` always builds.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outputs = ['build/kernels.wasm', 'dist/src/cli/main.js', 'dist/web/playground.js'].map((p) => join(root, p));
const sources = ['assembly', 'src', 'test', 'bench', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json'].map((p) => join(root, p));

/** Latest modification time of a file, or of anything in a folder. */
function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(path).reduce((m, e) => Math.max(m, newest(join(path, e))), s.mtimeMs);
}

const oldestOutput = outputs.every((p) => existsSync(p)) ? Math.min(...outputs.map((p) => statSync(p).mtimeMs)) : -Infinity;
const newestSource = Math.max(...sources.filter((p) => existsSync(p)).map(newest));
if (oldestOutput > newestSource) console.log('lowbit: the build is up to date (npm run build rebuilds)');
else execSync('npm run build', { cwd: root, stdio: 'inherit' });
