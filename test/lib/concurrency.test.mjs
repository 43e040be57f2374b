// Commands of one library session run side by side over the same writable
// directory. A protected path that does not exist yet (.bashrc, .git/hooks…)
// is masked with a placeholder the launcher creates and later removes; one
// command's clean-up must never open that path in a command still running.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox } from '../../dist/index.js';
import { tempDir, WHO } from '../helpers.mjs';

const work = tempDir('cordon-conc-');
after(() => work.cleanup());

async function waitFor(cond, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A holds the sandbox open (until its stdin closes); B starts meanwhile
 *  (after `beforeB`) and waits for "go"; A ends; `afterA` runs; then B runs
 *  `attack`. B's result and its output (ending with `rc=<attack's status>`). */
async function whileAnotherEnds(sb, attack, { beforeB = () => {}, afterA = async () => {} } = {}) {
  const a = await sb.spawnAsync(['sh', '-c', 'cat >/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
  await waitFor(() => a.launchInfo.childPid !== undefined);
  beforeB();
  const b = await sb.spawnAsync(['sh', '-c', `read go; ${attack}; echo "rc=$?"`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  b.stdout.on('data', (d) => (out += d));
  b.stderr.on('data', (d) => (out += d));
  await waitFor(() => b.launchInfo.childPid !== undefined || b.exitCode !== null);
  a.stdin.end();
  await a.result;
  await afterA();
  b.stdin.on('error', () => {});
  b.stdin.end('go\n');
  return { r: await b.result, out };
}

test(`a command ending does not unmask a protected path in a command still running (${WHO})`, async () => {
  const sb = await Sandbox.create({ filesystem: { allowWrite: [work.dir] } }, { cwd: work.dir });
  const bashrc = join(work.dir, '.bashrc');
  try {
    assert.equal(existsSync(bashrc), false);
    // B starts while A's placeholder (if any) is on the host.
    const { r, out } = await whileAnotherEnds(sb, `echo pwned >> ${bashrc}`, {
      // Give A's clean-up the chance to run: a launcher that removes a
      // placeholder another sandbox still uses does so right after A ends. A
      // launcher that keeps it while B runs leaves it there; then we go on.
      afterA: () => waitFor(() => !existsSync(bashrc), 2000).catch(() => {}),
    });
    if (r.code !== 125) assert.match(out, /rc=[1-9]/, `B wrote the protected path after A ended: ${out}`);
    // B refusing to start (125) is fail-closed and acceptable. Either way,
    // once both ended nothing is left on the host (no ghost placeholder).
    await waitFor(() => !existsSync(bashrc));
    assert.equal(existsSync(bashrc), false, `${bashrc} left on the host`);
  } finally {
    await sb.close();
  }
});

test(`commands started together in one directory all start, while their janitors remove shared placeholders (${WHO})`, async () => {
  // Each run adopts the placeholders (.bashrc, .idea, ...) a concurrent run
  // made, or makes them; another run's janitor may remove one between our
  // lookup and our lock. Setup must then make it again, never fail.
  const dir = tempDir('cordon-conc-many-');
  const sb = await Sandbox.create({ filesystem: { allowWrite: [dir.dir] } }, { cwd: dir.dir });
  try {
    for (let round = 0; round < 6; round++) {
      const runs = await Promise.all(Array.from({ length: 24 }, () => sb.run(['true'])));
      const failed = runs.filter((r) => r.code !== 0);
      assert.deepEqual(failed.map((r) => r.stderr.trim()), [], `round ${round}: runs that did not start`);
    }
    assert.ok(await waitFor(() => readdirSync(dir.dir).length === 0).then(() => true, () => false), `left: ${readdirSync(dir.dir)}`);
  } finally {
    await sb.close();
    dir.cleanup();
  }
});

test(`a protected path under another run's placeholder stays protected when that run ends (${WHO})`, async () => {
  // A masks the missing .claude with a placeholder file. B's plan is made
  // while that file exists: .claude/commands cannot exist under a file, but
  // once A's janitor removes the file, B's command could make the directory
  // and plant a command file for the host's agent, unless B holds the
  // placeholder too.
  const dir = tempDir('cordon-conc-nested-');
  const sb = await Sandbox.create({ filesystem: { allowWrite: [dir.dir] } }, { cwd: dir.dir });
  const planted = join(dir.dir, '.claude', 'commands', 'pwn.md');
  try {
    const { r, out } = await whileAnotherEnds(sb, 'mkdir -p .claude/commands; echo pwned > .claude/commands/pwn.md', {
      beforeB: () => assert.ok(existsSync(join(dir.dir, '.claude')), "A's placeholder is on the host while B is planned"),
    });
    assert.equal(existsSync(planted), false, `B planted ${planted}: ${out}`);
    if (r.code !== 125) assert.match(out, /rc=[1-9]/, `B wrote under .claude after A ended: ${out}`);
    await waitFor(() => readdirSync(dir.dir).length === 0);
  } finally {
    await sb.close();
    dir.cleanup();
  }
});
