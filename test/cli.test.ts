// The command line as a user meets it: help, exit codes (0 ok, 1 failed, 2 bad usage) and one-line errors.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function lowbit(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('lowbit CLI', () => {
  it('--help lists the commands and exits 0', () => {
    const r = lowbit('--help');
    assert.equal(r.code, 0);
    for (const cmd of ['train', 'eval', 'bench']) assert.match(r.out, new RegExp(`\\b${cmd}\\b`));
  });
  it('every command has --help', () => {
    for (const cmd of [['train'], ['eval'], ['bench', 'kernels']]) {
      const r = lowbit(...cmd, '--help');
      assert.equal(r.code, 0, cmd.join(' '));
      assert.match(r.out, /Usage: lowbit/);
    }
  });
  it('bad usage exits 2 and says what is wrong', () => {
    let r = lowbit('train', '--model', 'lenet5', '--dataset', 'mnist', '--lr', '-1');
    assert.equal(r.code, 2);
    assert.match(r.err, /--lr must be a number > 0, got "-1"/);
    r = lowbit('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'frobnicate'/);
    r = lowbit('eval', '--dataset', 'mnist');
    assert.equal(r.code, 2);
    assert.match(r.err, /required option '--model/);
  });
  it('a failure exits 1 with one line and no stack trace', () => {
    const r = lowbit('eval', '--model', '/nonexistent/model.lowbit', '--dataset', 'mnist');
    assert.equal(r.code, 1);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, /^lowbit: cannot read model file \/nonexistent\/model.lowbit: ENOENT/);
    const z = lowbit('train', '--model', 'alexnet', '--dataset', 'mnist');
    assert.equal(z.code, 1);
    assert.match(z.err, /unknown model "alexnet"; the zoo has: mlp, lenet5/);
  });
});
