// Catalog F14, F15, F17 and H2 as real runs through the cordon CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { WHO } from '../helpers.mjs';
import { project, assertRan } from './fs-util.mjs';

test(`F14: /tmp is private: host files invisible, planted files never reach the host (${WHO})`, () => {
  const p = project();
  const tag = `cordon-f14-${randomBytes(4).toString('hex')}`;
  const hostCanary = join(tmpdir(), `${tag}-canary`);
  const planted = join('/tmp', `${tag}-planted`);
  try {
    writeFileSync(hostCanary, 'host');
    const r = p.sh(
      [
        'ls -a /tmp',
        `cat ${hostCanary} 2>/dev/null && echo SAW-canary`,
        `ln -s ~/.bashrc ${planted} && echo > ${planted}-file && echo PLANTED-inside`,
        'ls -a /tmp/.X11-unix 2>/dev/null && echo SAW-x11',
        'echo CORDON-RAN',
      ].join('; '),
    );
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /SAW-/);
    assert.ok(!r.stdout.includes(`${tag}-canary`), 'host /tmp entry listed inside');
    assert.match(r.stdout, /PLANTED-inside/, 'the private /tmp is writable');
    assert.ok(!existsSync(planted) && !existsSync(`${planted}-file`), 'planted file reached the host /tmp');
  } finally {
    rmSync(hostCanary, { force: true });
    rmSync(planted, { force: true });
    rmSync(`${planted}-file`, { force: true });
    p.cleanup();
  }
});

test(`F15: only a minimal /dev; no device nodes can be made or reached (${WHO})`, () => {
  const p = project();
  try {
    const r = p.sh(
      [
        'ls /dev',
        'mknod /tmp/m c 1 1 2>/dev/null && echo MADE-node',
        'head -c 1 /dev/mem >/dev/null 2>&1 && echo READ-mem',
        'head -c 1 /dev/kmsg >/dev/null 2>&1 && echo READ-kmsg',
        'for d in /dev/sda /dev/vda /dev/nvme0n1 /dev/loop0; do head -c 1 $d >/dev/null 2>&1 && echo READ-$d; done',
        'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c',
        'echo CORDON-RAN',
      ].join('; '),
    );
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /MADE-|READ-/);
    const listed = r.stdout.split('\n').slice(0, r.stdout.split('\n').findIndex((l) => l.trim() === '4'));
    for (const bad of ['mem', 'kmsg', 'sda', 'vda', 'loop0', 'vsock']) assert.ok(!listed.includes(bad), `/dev/${bad} present inside`);
    for (const good of ['null', 'zero', 'urandom']) assert.ok(listed.includes(good), `/dev/${good} missing inside`);
  } finally {
    p.cleanup();
  }
});

test(`F17: the old root is gone and chroot is refused (${WHO})`, () => {
  const p = project();
  const tag = `cordon-f17-${randomBytes(4).toString('hex')}`;
  const hostCanary = join(tmpdir(), tag);
  try {
    writeFileSync(hostCanary, 'host');
    const r = p.sh(
      [
        `ls /proc/1/root/tmp/ 2>/dev/null | grep -q ${tag} && echo SAW-host-tmp`,
        'for d in /oldroot /newroot /tmp/oldroot /.oldroot; do [ -e $d ] && echo SAW-$d; done',
        'chroot . /bin/true 2>/dev/null && echo CHROOTED',
        'echo CORDON-RAN',
      ].join('; '),
    );
    assertRan(assert, r);
    assert.doesNotMatch(r.stdout, /SAW-|CHROOTED/);
  } finally {
    rmSync(hostCanary, { force: true });
    p.cleanup();
  }
});

test(`H2: a helper planted on PATH or in the cwd is never used (${WHO})`, () => {
  const p = project();
  try {
    const bin = join(p.W, 'bin');
    mkdirSync(bin);
    for (const name of ['cordon-launcher', 'bwrap', 'socat', 'rg']) {
      writeFileSync(join(bin, name), `#!/bin/sh\ntouch '${p.root}/pwned-${name}'\nexec "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(p.W, 'cordon-launcher'), `#!/bin/sh\ntouch '${p.root}/pwned-cwd'\n`);
    chmodSync(join(p.W, 'cordon-launcher'), 0o755);
    const r = p.sh('echo x > /etc/cordon-h2 2>/dev/null && echo UNSANDBOXED; echo "sandbox=$CORDON_SANDBOX"; echo CORDON-RAN', [], {
      PATH: `${bin}:.:/usr/local/bin:/usr/bin:/bin`,
    });
    assertRan(assert, r);
    assert.match(r.stdout, /sandbox=1/);
    assert.doesNotMatch(r.stdout, /UNSANDBOXED/);
    for (const f of ['cordon-launcher', 'bwrap', 'socat', 'rg', 'cwd']) assert.ok(!existsSync(join(p.root, `pwned-${f}`)), `planted ${f} ran`);
  } finally {
    rmSync('/etc/cordon-h2', { force: true });
    p.cleanup();
  }
});
