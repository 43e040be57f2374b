// A FactSession that has a directory's listing answers "absent" for names
// not in it without an lstat (the cwd changes at every run through the
// launcher's placeholders, and its absent protected names were stat'ed one
// by one). Checked: the answers equal realFs's, fewer stats are made, a
// name that appears is seen by the next session, and no listing read
// through a symlink or that failed stands in for an lstat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FactCache, realFs, realStat } from '../../dist/policy/facts.js';
import { tempDir, IS_ROOT } from '../helpers.mjs';

/** realFs and realStat, recording the paths that reach them. */
function counting(over = {}) {
  const calls = { base: [], stat: [] };
  const base = {};
  for (const k of Object.keys(realFs)) {
    base[k] = (p) => {
      calls.base.push(`${k} ${p}`);
      return (over[k] ?? realFs[k])(p);
    };
  }
  const stat = (p) => {
    calls.stat.push(p);
    return realStat(p);
  };
  return { calls, cache: new FactCache(base, stat) };
}

/** Stamps younger than 25 ms are not trusted: let a fresh tree age. */
const settle = () => sleep(60);

const NAMES = ['.bashrc', '.gitconfig', '.mcp.json', '.idea', '.git'];

test('names missing from a listing are absent without an lstat; present ones are still stat\'ed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'file'), 'abc');
    mkdirSync(join(dir, 'sub'));
    await settle();
    const { calls, cache } = counting();
    const s = cache.session();
    assert.deepEqual(s.readdirKinds(dir).map((e) => e.name).sort(), ['file', 'sub']);
    const before = calls.stat.length;
    for (const n of NAMES) assert.equal(s.lstat(join(dir, n)), realFs.lstat(join(dir, n)));
    assert.equal(s.realpath(join(dir, 'gone', 'deeper')), undefined);
    assert.deepEqual(calls.stat.slice(before), [], 'no stat for names the listing does not have');
    assert.deepEqual(s.lstat(join(dir, 'file')), { kind: 'file', size: 3 });
    assert.deepEqual(s.lstat(join(dir, 'sub')), { kind: 'dir' });
    assert.deepEqual(calls.stat.slice(before), [join(dir, 'file'), join(dir, 'sub')], 'present names are stat\'ed (their stamps)');
  } finally {
    cleanup();
  }
});

test('a name that appears after the listing is seen by the next session, at the top and deeper', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await settle();
    const { cache } = counting();
    let s = cache.session();
    s.readdirKinds(dir);
    for (const n of NAMES) assert.equal(s.lstat(join(dir, n)), undefined);
    assert.equal(s.realpath(join(dir, 'cfg', 'hosts.yml')), undefined);
    writeFileSync(join(dir, '.bashrc'), 'x');
    mkdirSync(join(dir, '.git'));
    mkdirSync(join(dir, 'cfg'));
    writeFileSync(join(dir, 'cfg', 'hosts.yml'), '');
    for (const wait of [false, true]) {
      // Right away (the directory's stamp is young: not trusted) and once it aged.
      if (wait) await settle();
      s = cache.session();
      s.readdirKinds(dir);
      assert.deepEqual(s.lstat(join(dir, '.bashrc')), { kind: 'file', size: 1 });
      assert.deepEqual(s.lstat(join(dir, '.git')), { kind: 'dir' });
      assert.equal(s.lstat(join(dir, '.gitconfig')), undefined);
      assert.equal(s.realpath(join(dir, 'cfg', 'hosts.yml')), join(dir, 'cfg', 'hosts.yml'));
    }
    // Asked before the listing in a later session: the same answers.
    s = cache.session();
    assert.deepEqual(s.lstat(join(dir, '.bashrc')), { kind: 'file', size: 1 });
    assert.equal(s.lstat(join(dir, '.idea')), undefined);
  } finally {
    cleanup();
  }
});

test('a listing read through a symlink, or one that failed, does not stand in for an lstat', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'there'), '');
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    await settle();
    const { calls, cache } = counting();
    let s = cache.session();
    assert.deepEqual(s.readdir(join(dir, 'link')), ['there']);
    assert.equal(s.lstat(join(dir, 'link', 'absent')), undefined);
    assert.ok(calls.base.includes(`lstat ${join(dir, 'link', 'absent')}`), 'asked of the filesystem itself');
    // A listing that failed (EMFILE, EIO...): the names are stat'ed.
    const failing = counting({ readdirKinds: () => undefined, readdir: () => undefined });
    s = failing.cache.session();
    assert.equal(s.readdirKinds(join(dir, 'real')), undefined);
    assert.deepEqual(s.lstat(join(dir, 'real', 'there')), { kind: 'file', size: 0 });
    assert.equal(s.lstat(join(dir, 'real', 'nope')), undefined);
    assert.ok(failing.calls.stat.includes(join(dir, 'real', 'nope')), 'the absent name was stat\'ed');
  } finally {
    cleanup();
  }
});

test('a readable but not searchable directory: its names answer as an lstat would', async (t) => {
  if (IS_ROOT) return t.skip('root ignores directory permissions');
  const { dir, cleanup } = tempDir();
  const d = join(dir, 'noexec');
  try {
    mkdirSync(d);
    writeFileSync(join(d, 'there'), '');
    chmodSync(d, 0o444);
    await settle();
    const { cache } = counting();
    const s = cache.session();
    assert.deepEqual(s.readdir(d), ['there']);
    assert.equal(s.lstat(join(d, 'there')), realFs.lstat(join(d, 'there')));
    assert.equal(s.lstat(join(d, 'other')), realFs.lstat(join(d, 'other')));
  } finally {
    chmodSync(d, 0o755);
    cleanup();
  }
});

test('only plain names absent in any case speak: another case, a non-ASCII listing, 8.3 aliases and trailing dots are stat\'ed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, '.bashrc'), 'x');
    mkdirSync(join(dir, 'uni'));
    writeFileSync(join(dir, 'uni', '\u212aey'), ''); // KELVIN SIGN: 'key' on a casefold directory
    await settle();
    const { calls, cache } = counting();
    const s = cache.session();
    s.readdirKinds(dir);
    s.readdir(join(dir, 'uni'));
    const asked = [join(dir, '.BASHRC'), join(dir, 'PROGRA~1'), join(dir, 'name.'), join(dir, 'sp ace'), join(dir, 'uni', 'key'), join(dir, 'uni', '.git')];
    const before = calls.stat.length;
    // On a case-insensitive filesystem these could exist although the
    // listing does not have them spelled so: the filesystem is asked.
    for (const p of asked) assert.equal(s.lstat(p), realFs.lstat(p), p);
    assert.deepEqual(calls.stat.slice(before), asked);
    assert.equal(s.lstat(join(dir, '.gitconfig')), undefined);
    assert.equal(calls.stat.length, before + asked.length, 'a plain name absent in any case is not stat\'ed');
  } finally {
    cleanup();
  }
});
