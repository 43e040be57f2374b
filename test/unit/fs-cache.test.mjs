// The cross-command facts cache (AbsenceCache): a long-lived Sandbox keeps
// "absent" and "is its own realpath" answers between compiles, re-checked by
// directory stamps. Every change on disk that alters an answer must show in
// the next compile; an unchanged tree must cost fewer questions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, renameSync, symlinkSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { AbsenceCache, realFs } from '../../dist/policy/facts.js';
import { Sandbox } from '../../dist/index.js';
import { tempDir, IS_ROOT } from '../helpers.mjs';

/** realFs, counting the questions that reach it. */
function countingFs() {
  const fs = { calls: 0 };
  for (const k of Object.keys(realFs)) {
    fs[k] = (p) => {
      fs.calls++;
      return realFs[k](p);
    };
  }
  return fs;
}

test('an absent path that appears (directly or deeper) is seen by the next session', () => {
  const { dir, cleanup } = tempDir();
  try {
    const cache = new AbsenceCache(realFs);
    const a = join(dir, 'store');
    const deep = join(dir, 'cfg', 'gh', 'hosts.yml');
    let s = cache.session();
    assert.equal(s.lstat(a), undefined);
    assert.equal(s.realpath(deep), undefined);
    s = cache.session();
    assert.equal(s.lstat(a), undefined, 'still absent');
    mkdirSync(a);
    mkdirSync(join(dir, 'cfg', 'gh'), { recursive: true });
    writeFileSync(deep, 'x');
    s = cache.session();
    assert.equal(s.lstat(a)?.kind, 'dir');
    assert.equal(s.realpath(deep), deep);
    // And gone again.
    rmSync(a, { recursive: true });
    rmSync(join(dir, 'cfg'), { recursive: true });
    s = cache.session();
    assert.equal(s.lstat(a), undefined);
    assert.equal(s.realpath(deep), undefined);
  } finally {
    cleanup();
  }
});

test('a cached realpath notices a directory on the way replaced by a symlink', () => {
  const { dir, cleanup } = tempDir();
  try {
    const cache = new AbsenceCache(realFs);
    mkdirSync(join(dir, 'proj', 'sub'), { recursive: true });
    mkdirSync(join(dir, 'elsewhere', 'sub'), { recursive: true });
    const p = join(dir, 'proj', 'sub');
    assert.equal(cache.session().realpath(p), p);
    assert.equal(cache.session().realpath(p), p);
    renameSync(join(dir, 'proj'), join(dir, 'old'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'proj'));
    assert.equal(cache.session().realpath(p), join(dir, 'elsewhere', 'sub'));
    // Through the symlink nothing is kept: a change behind it shows too.
    rmSync(join(dir, 'elsewhere', 'sub'), { recursive: true });
    assert.equal(cache.session().realpath(p), undefined);
    mkdirSync(join(dir, 'elsewhere', 'sub'));
    assert.equal(cache.session().realpath(p), join(dir, 'elsewhere', 'sub'));
  } finally {
    cleanup();
  }
});

test('a dangling symlink is not cached as absent: its target appearing is seen', () => {
  const { dir, cleanup } = tempDir();
  try {
    const cache = new AbsenceCache(realFs);
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'target'), link);
    assert.equal(cache.session().realpath(link), undefined);
    assert.equal(cache.session().lstat(link)?.kind, 'symlink');
    mkdirSync(join(dir, 'target'));
    assert.equal(cache.session().realpath(link), join(dir, 'target'));
  } finally {
    cleanup();
  }
});

test('a permission change on the way is noticed (EACCES is not kept past it)', (t) => {
  if (IS_ROOT) return t.skip('root ignores directory permissions');
  const { dir, cleanup } = tempDir();
  try {
    const cache = new AbsenceCache(realFs);
    mkdirSync(join(dir, 'home', '.ssh'), { recursive: true });
    const ssh = join(dir, 'home', '.ssh');
    chmodSync(join(dir, 'home'), 0o000);
    assert.equal(cache.session().lstat(ssh), undefined);
    assert.equal(cache.session().lstat(ssh), undefined);
    chmodSync(join(dir, 'home'), 0o755);
    assert.equal(cache.session().lstat(ssh)?.kind, 'dir');
  } finally {
    chmodSync(join(dir, 'home'), 0o755);
    cleanup();
  }
});

test('an unchanged tree costs fewer questions from the second session on, with the same answers', () => {
  const { dir, cleanup } = tempDir();
  try {
    const base = countingFs();
    const cache = new AbsenceCache(base);
    const paths = [];
    for (const h of ['a', 'b', 'c']) {
      mkdirSync(join(dir, h, '.config'), { recursive: true });
      for (const s of ['.ssh', '.aws', '.config/gh', '.config/gcloud', '.docker/config.json', '.netrc']) paths.push(join(dir, h, s));
    }
    const ask = (s) => paths.map((p) => [s.realpath(p), s.lstat(p)?.kind]);
    const first = ask(cache.session());
    const firstCalls = base.calls;
    base.calls = 0;
    const second = ask(cache.session());
    assert.deepEqual(second, first);
    assert.equal(base.calls, 0, 'every answer here was an absence, re-checked by stamps only');
    assert.ok(firstCalls > 0);
  } finally {
    cleanup();
  }
});

test('Sandbox.plan: a protected name created in the writable root between two commands is protected at the next', async () => {
  const { dir, cleanup } = tempDir();
  const sb = await Sandbox.create({ filesystem: { allowWrite: [dir] } });
  try {
    const covers = (plan, p) => plan.mounts.some((m) => m.path === p || m.dst === p);
    const nested = join(dir, 'pkg', 'sub');
    mkdirSync(nested, { recursive: true });
    const before = sb.plan(['true'], { cwd: dir });
    assert.ok(!covers(before, join(nested, '.bashrc')));
    sb.plan(['true'], { cwd: dir });
    writeFileSync(join(nested, '.bashrc'), 'echo hi\n');
    mkdirSync(join(dir, 'pkg', '.git'));
    const after = sb.plan(['true'], { cwd: dir });
    assert.ok(covers(after, join(nested, '.bashrc')), 'nested .bashrc protected');
    assert.ok(covers(after, join(dir, 'pkg', '.git', 'hooks')), 'new repository hooks protected');
  } finally {
    await sb.close();
    cleanup();
  }
});

test('mandatory-deny walk: a changed root is listed again, unchanged subdirectories are not; a new nested name is found', async () => {
  const { findNested } = await import('../../dist/policy/mandatory.js');
  const { dir, cleanup } = tempDir();
  try {
    for (const s of ['a', 'b', 'c']) mkdirSync(join(dir, s, 'deep'), { recursive: true });
    const lists = [];
    const base = { ...realFs };
    base.readdir = (p) => (lists.push(p), realFs.readdir(p));
    base.readdirKinds = (p) => (lists.push(p), realFs.readdirKinds(p));
    const cache = new AbsenceCache(base);
    assert.deepEqual(findNested(dir, 3, false, cache.session()).found, []);
    assert.ok(lists.length >= 7, `first walk lists every directory: ${lists}`);
    lists.length = 0;
    writeFileSync(join(dir, 'placeholder'), ''); // what the launcher does in a writable root
    assert.deepEqual(findNested(dir, 3, false, cache.session()).found, []);
    assert.deepEqual(lists, [dir], 'only the changed root is listed again');
    writeFileSync(join(dir, 'b', 'deep', '.bashrc'), '');
    mkdirSync(join(dir, 'c', '.git'));
    const found = findNested(dir, 3, false, cache.session()).found.sort();
    assert.deepEqual(found, [join(dir, 'b', 'deep', '.bashrc'), join(dir, 'c', '.git', 'hooks')].sort());
  } finally {
    cleanup();
  }
});
