// The caches a long-lived Sandbox keeps between compiles: the FactCache
// (every filesystem answer of the compiler, with the stamps it depends on)
// and the PlanCache (whole plans, reused while every answer they were
// compiled from still holds). Every change on disk that alters an answer
// must show in the next compile, which must then equal a fresh compile;
// an unchanged tree must cost fewer questions and no compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, renameSync, symlinkSync, rmSync, chmodSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FactCache, realFs, realStat, realFacts, memoFs } from '../../dist/policy/facts.js';
import { PlanCache } from '../../dist/policy/plan-cache.js';
import { compile } from '../../dist/policy/compile.js';
import { parseSettings } from '../../dist/config/load.js';
import { Sandbox } from '../../dist/index.js';
import { tempDir, IS_ROOT } from '../helpers.mjs';

/** realFs and realStat, counting the questions that reach them. */
function counting() {
  const n = { base: 0, stat: 0 };
  const base = {};
  for (const k of Object.keys(realFs)) {
    base[k] = (p) => {
      n.base++;
      return realFs[k](p);
    };
  }
  const stat = (p) => {
    n.stat++;
    return realStat(p);
  };
  return { n, base, stat };
}

/** Stamps younger than a few ms are not trusted (coarse file clocks): let
 *  a freshly made tree age so that the checks below exercise the stamps. */
const settle = () => sleep(60);

test('an absent path that appears (directly or deeper) is seen by the next session, and gone again', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await settle();
    const cache = new FactCache();
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
    assert.deepEqual(s.lstat(deep), { kind: 'file', size: 1 });
    rmSync(a, { recursive: true });
    rmSync(join(dir, 'cfg'), { recursive: true });
    s = cache.session();
    assert.equal(s.lstat(a), undefined);
    assert.equal(s.realpath(deep), undefined);
  } finally {
    cleanup();
  }
});

test('a cached realpath notices a directory on the way replaced by a symlink', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const cache = new FactCache();
    mkdirSync(join(dir, 'proj', 'sub'), { recursive: true });
    mkdirSync(join(dir, 'elsewhere', 'sub'), { recursive: true });
    await settle();
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

test('a dangling symlink is not cached as absent: its target appearing is seen', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const cache = new FactCache();
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'target'), link);
    await settle();
    assert.equal(cache.session().realpath(link), undefined);
    assert.equal(cache.session().lstat(link)?.kind, 'symlink');
    mkdirSync(join(dir, 'target'));
    assert.equal(cache.session().realpath(link), join(dir, 'target'));
  } finally {
    cleanup();
  }
});

test('a permission change on the way is noticed (EACCES is not kept past it)', async (t) => {
  if (IS_ROOT) return t.skip('root ignores directory permissions');
  const { dir, cleanup } = tempDir();
  try {
    const cache = new FactCache();
    mkdirSync(join(dir, 'home', '.ssh'), { recursive: true });
    const ssh = join(dir, 'home', '.ssh');
    chmodSync(join(dir, 'home'), 0o000);
    await settle();
    assert.equal(cache.session().lstat(ssh), undefined);
    assert.equal(cache.session().lstat(ssh), undefined);
    chmodSync(join(dir, 'home'), 0o755);
    assert.equal(cache.session().lstat(ssh)?.kind, 'dir');
  } finally {
    chmodSync(join(dir, 'home'), 0o755);
    cleanup();
  }
});

test('file content, size and kind changes are seen; a listing is read again only when its directory changed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'config');
    writeFileSync(f, '[core]\n\thooksPath = a\n');
    mkdirSync(join(dir, 'd'));
    await settle();
    const cache = new FactCache();
    let s = cache.session();
    assert.match(s.readFile(f), /hooksPath = a/);
    const listing = s.readdirKinds(dir);
    assert.deepEqual(listing.map((e) => e.name).sort(), ['config', 'd']);
    s = cache.session();
    assert.equal(s.readdirKinds(dir), listing, 'the same listing, not a new one');
    writeFileSync(f, '[core]\n\thooksPath = b\n'); // same size
    assert.match(cache.session().readFile(f), /hooksPath = b/);
    // A placeholder made and removed (what the launcher does): the listing
    // is read again, equal, and handed out as the same object.
    writeFileSync(join(dir, '.bashrc'), '');
    unlinkSync(join(dir, '.bashrc'));
    assert.equal(cache.session().readdirKinds(dir), listing);
    rmSync(join(dir, 'd'), { recursive: true });
    writeFileSync(join(dir, 'd'), 'now a file');
    s = cache.session();
    assert.deepEqual(s.lstat(join(dir, 'd')), { kind: 'file', size: 10 });
    assert.deepEqual(s.readdirKinds(dir).find((e) => e.name === 'd'), { name: 'd', kind: 'file' });
    assert.equal(s.readdir(join(dir, 'd', 'x')), undefined, 'under a file: ENOTDIR');
  } finally {
    cleanup();
  }
});

test('a failure that is not an answer (a listing or read that failed, a stat error such as EMFILE) is asked again, never kept', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', '.bashrc'), 'x');
    writeFileSync(join(dir, 'f'), 'text');
    await settle();
    let fail = true;
    const rc = join(dir, 'd', '.bashrc');
    const base = {
      ...realFs,
      readdirKinds: (p) => (fail ? undefined : realFs.readdirKinds(p)),
      readFile: (p) => (fail ? undefined : realFs.readFile(p)),
      // What realFs.lstat says on any error.
      lstat: (p) => (fail && p === rc ? undefined : realFs.lstat(p)),
    };
    let statFails = new Set([rc]);
    const cache = new FactCache(base, (p) => (statFails.has(p) ? null : realStat(p)));
    let s = cache.session();
    assert.equal(s.readdirKinds(join(dir, 'd')), undefined);
    assert.equal(s.readFile(join(dir, 'f')), undefined);
    assert.equal(s.lstat(rc), undefined, 'a failed stat: the base answers');
    // Nothing on disk changes; the failures stop.
    fail = false;
    statFails = new Set();
    s = cache.session();
    assert.deepEqual(s.readdirKinds(join(dir, 'd')), [{ name: '.bashrc', kind: 'file' }]);
    assert.equal(s.readFile(join(dir, 'f')), 'text');
    assert.deepEqual(s.lstat(rc), { kind: 'file', size: 1 });
  } finally {
    cleanup();
  }
});

test('answers handed to the compiler cannot be changed in place (they are shared by later compiles)', () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'b'), '');
    writeFileSync(join(dir, 'a'), '');
    const s = new FactCache().session();
    assert.throws(() => s.readdir(dir).sort(), TypeError);
    assert.throws(() => {
      s.lstat(join(dir, 'a')).kind = 'dir';
    }, TypeError);
  } finally {
    cleanup();
  }
});

test('an unchanged tree costs one stat per stamp and no other question from the second session on, with the same answers', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const c = counting();
    const cache = new FactCache(c.base, c.stat);
    const paths = [];
    for (const h of ['a', 'b', 'c']) {
      mkdirSync(join(dir, h, '.config'), { recursive: true });
      for (const s of ['.ssh', '.aws', '.config/gh', '.config/gcloud', '.docker/config.json', '.netrc']) paths.push(join(dir, h, s));
    }
    await settle();
    const ask = (s) => paths.map((p) => [s.realpath(p), s.lstat(p)?.kind, s.readdir(join(p, '..'))?.length]);
    const first = ask(cache.session());
    const firstStats = c.n.stat;
    c.n.base = 0;
    c.n.stat = 0;
    const second = ask(cache.session());
    assert.deepEqual(second, first);
    assert.equal(c.n.base, 0, 'nothing re-read');
    assert.ok(c.n.stat < firstStats, `${c.n.stat} stamps checked, ${firstStats} stats at first`);
  } finally {
    cleanup();
  }
});

test('a stamp from the last few ms is not trusted (same-tick changes on a coarse file clock)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'f');
    writeFileSync(f, 'x');
    const future = Date.now() / 1000 + 3600;
    utimesSync(f, future, future);
    assert.equal(realStat(f).stamp, '');
    utimesSync(f, 1000, 1000);
    assert.equal(realStat(dir).kind, 'dir');
    assert.equal(realStat(join(dir, 'nope')), undefined);
  } finally {
    cleanup();
  }
});

test('mandatory-deny walk: a changed root is listed again, unchanged subdirectories are not; a new nested name is found', async () => {
  const { findNested } = await import('../../dist/policy/mandatory.js');
  const { dir, cleanup } = tempDir();
  try {
    for (const s of ['a', 'b', 'c']) mkdirSync(join(dir, s, 'deep'), { recursive: true });
    await settle();
    const lists = [];
    const base = { ...realFs };
    base.readdir = (p) => (lists.push(p), realFs.readdir(p));
    base.readdirKinds = (p) => (lists.push(p), realFs.readdirKinds(p));
    const cache = new FactCache(base);
    assert.deepEqual(findNested(dir, 3, false, cache.session()).found, []);
    assert.ok(lists.length >= 4, `first walk lists every directory: ${lists}`);
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

// ---- PlanCache: each kind of disk change between two compiles -------------

/** A project (a git repository with a nested package), a home, and a
 *  PlanCache compiling `settings` for it; check() compiles through the cache
 *  and asserts the result equals a fresh compile of the same inputs. */
function project(dir, settings = {}) {
  const w = join(dir, 'w');
  const home = join(dir, 'home');
  for (const d of ['.git/hooks', 'src/a', 'pkg/sub', 'node_modules/x']) mkdirSync(join(w, d), { recursive: true });
  mkdirSync(join(home, '.config'), { recursive: true });
  writeFileSync(join(w, '.git', 'config'), '[core]\n\tbare = false\n');
  writeFileSync(join(w, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  const config = parseSettings({ filesystem: { allowWrite: ['.'], ...settings } });
  const cache = new PlanCache();
  let env = { PATH: '/usr/bin:/bin', HOME: home };
  const facts = () => realFacts({ cwd: w, home, env, settingsFiles: [] });
  const base = facts();
  const check = (argv = ['true'], cfg = config) => {
    const f = { ...base, env };
    const got = cache.compile(cfg, f, argv);
    const want = compile(cfg, { ...f, fs: memoFs(realFs) }, argv);
    assert.deepEqual(got, want, 'the cached compile equals a fresh one');
    return got;
  };
  return { w, home, cache, check, config, setEnv: (e) => (env = e) };
}

const covers = (plan, p, op) => plan.mounts.some((m) => (m.path === p || m.dst === p) && (!op || m.op === op));

test('PlanCache: an unchanged tree reuses the plan (any argv), a returned plan can be changed freely', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = project(dir);
    await settle();
    const a = p.check(['true']);
    const compiles = p.cache.stats.compiles;
    const b = p.check(['echo', 'hi']);
    assert.equal(p.cache.stats.compiles, compiles, 'no second compile');
    assert.equal(p.cache.stats.hits, 1);
    assert.deepEqual(b.argv, ['echo', 'hi']);
    b.mounts.length = 0;
    b.env.X = '1';
    b.notes.push('mine');
    const c = p.check(['true']);
    assert.deepEqual(c, a);
    // The launcher's placeholders come and go in the writable root between
    // commands: the root's listing is read again, the plan stays.
    writeFileSync(join(p.w, '.bashrc'), '');
    unlinkSync(join(p.w, '.bashrc'));
    p.check();
    assert.equal(p.cache.stats.compiles, compiles, 'placeholder churn does not recompile');
  } finally {
    cleanup();
  }
});

test('PlanCache: protected names created at the top and nested, a new repository, a repository\'s commondir', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = project(dir);
    await settle();
    let plan = p.check();
    assert.ok(covers(plan, join(p.w, '.bashrc'), 'mask'));
    writeFileSync(join(p.w, '.bashrc'), 'echo hi\n');
    plan = p.check();
    assert.ok(covers(plan, join(p.w, '.bashrc'), 'ro-bind'), 'an existing one is bound read-only');
    await settle();
    p.check();
    writeFileSync(join(p.w, 'pkg', 'sub', '.zshrc'), 'x');
    plan = p.check();
    assert.ok(covers(plan, join(p.w, 'pkg', 'sub', '.zshrc')), 'nested (depth 2)');
    await settle();
    p.check();
    mkdirSync(join(p.w, 'src', 'a', '.git'));
    writeFileSync(join(p.w, '.git', 'commondir'), '../other\n');
    plan = p.check();
    assert.ok(covers(plan, join(p.w, 'src', 'a', '.git', 'hooks')), 'a new nested repository');
    assert.ok(covers(plan, join(p.w, '.git', 'commondir')), 'commondir');
  } finally {
    cleanup();
  }
});

test('PlanCache: .git/config content (core.hooksPath) and an emptied file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = project(dir);
    mkdirSync(join(p.w, '.husky'));
    writeFileSync(join(p.w, '.husky', 'pre-commit'), 'x');
    await settle();
    let plan = p.check();
    assert.ok(!covers(plan, join(p.w, '.husky')));
    // Same size, other content.
    writeFileSync(join(p.w, '.git', 'config'), '[core]\n\thooksPath=.husky\n');
    plan = p.check();
    assert.ok(covers(plan, join(p.w, '.husky')), 'core.hooksPath directory protected');
    writeFileSync(join(p.w, '.bashrc'), 'x');
    await settle();
    assert.ok(covers(p.check(), join(p.w, '.bashrc'), 'ro-bind'));
    writeFileSync(join(p.w, '.bashrc'), '');
    assert.ok(covers(p.check(), join(p.w, '.bashrc'), 'mask'), 'an empty file is masked, not bound');
  } finally {
    cleanup();
  }
});

test('PlanCache: a rule path appearing or disappearing, a symlink retargeted, a directory replaced by a file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out1 = join(dir, 'out1');
    const out2 = join(dir, 'out2');
    mkdirSync(out1);
    mkdirSync(out2);
    symlinkSync(out1, join(dir, 'out'));
    // Inside the writable root: the host's /tmp is not visible anyway.
    const secret = join(dir, 'w', 'secret');
    const p = project(dir, { allowWrite: ['.', join(dir, 'out')], denyRead: [secret] });
    await settle();
    let plan = p.check();
    assert.ok(covers(plan, out1, 'bind') && !covers(plan, secret));
    mkdirSync(secret);
    unlinkSync(join(dir, 'out'));
    symlinkSync(out2, join(dir, 'out'));
    plan = p.check();
    assert.ok(covers(plan, secret, 'mask'), 'a denyRead path that now exists is hidden');
    assert.ok(covers(plan, out2, 'bind') && !covers(plan, out1), 'the retargeted link is followed');
    await settle();
    p.check();
    rmSync(secret, { recursive: true });
    writeFileSync(secret, 'a file now');
    plan = p.check();
    assert.ok(covers(plan, secret, 'mask'));
    await settle();
    p.check();
    rmSync(secret);
    plan = p.check();
    assert.ok(!covers(plan, secret), 'gone again: nothing to hide');
  } finally {
    cleanup();
  }
});

test('PlanCache: a change in the home (credential store, shell file) and in the environment', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = project(dir, { allowWrite: ['.', '~'] });
    await settle();
    let plan = p.check();
    assert.ok(covers(plan, join(p.home, '.zlogin'), 'mask'));
    writeFileSync(join(p.home, '.zlogin'), 'x');
    mkdirSync(join(p.home, '.ssh'));
    plan = p.check();
    assert.ok(covers(plan, join(p.home, '.zlogin'), 'ro-bind'));
    assert.ok(covers(plan, join(p.home, '.ssh'), 'mask'));
    const compiles = p.cache.stats.compiles;
    p.setEnv({ PATH: '/usr/bin:/bin', HOME: p.home, ZDOTDIR: join(p.w, 'src') });
    plan = p.check();
    assert.ok(covers(plan, join(p.w, 'src', '.zshenv'), 'mask'), 'ZDOTDIR from the new environment');
    assert.equal(p.cache.stats.compiles, compiles + 1);
    // A changed config is a different plan too.
    plan = p.check(['true'], parseSettings({ filesystem: { allowWrite: ['.'], denyWrite: ['src'] } }));
    assert.ok(covers(plan, join(p.w, 'src'), 'ro-bind'));
  } finally {
    cleanup();
  }
});

test('Sandbox.plan: a protected name created in the writable root between two commands is protected at the next', async () => {
  const { dir, cleanup } = tempDir();
  const sb = await Sandbox.create({ filesystem: { allowWrite: [dir] } });
  try {
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
