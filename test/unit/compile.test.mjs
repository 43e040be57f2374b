// Compiler unit tests on a fake filesystem: one test per ordering rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../dist/policy/compile.js';
import { parseSettings } from '../../dist/config/load.js';
import { clearMandatoryCache, gitHooksPath } from '../../dist/policy/mandatory.js';
import { realFacts, parseMountinfo, FactCache } from '../../dist/policy/facts.js';

/** A fake fs from a list of paths: "dir/" entries are directories, "a -> b"
 *  symlinks, the rest files. Parents are implied. */
function fakeFs(entries) {
  const nodes = new Map([['/', { kind: 'dir', mtimeMs: 1 }]]);
  const addParents = (p) => {
    for (let d = p.slice(0, p.lastIndexOf('/')) || '/'; ; d = d.slice(0, d.lastIndexOf('/')) || '/') {
      if (!nodes.has(d)) nodes.set(d, { kind: 'dir', mtimeMs: 1 });
      if (d === '/') break;
    }
  };
  for (const e of entries) {
    if (e.includes(' := ')) {
      const [p, text] = e.split(' := ');
      nodes.set(p, { kind: 'file', mtimeMs: 1, text });
      addParents(p);
    } else if (e.includes(' -> ')) {
      const [p, t] = e.split(' -> ');
      nodes.set(p, { kind: 'symlink', mtimeMs: 1, target: t });
      addParents(p);
    } else if (e.endsWith('/')) {
      nodes.set(e.slice(0, -1), { kind: 'dir', mtimeMs: 1 });
      addParents(e.slice(0, -1));
    } else {
      nodes.set(e, { kind: 'file', mtimeMs: 1 });
      addParents(e);
    }
  }
  const realpath = (p, hops = 0) => {
    if (hops > 20) return undefined;
    const parts = p.split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = cur === '/' ? `/${parts[i]}` : `${cur}/${parts[i]}`;
      const n = nodes.get(next);
      if (!n) return undefined;
      if (n.kind === 'symlink') {
        const t = n.target.startsWith('/') ? n.target : `${cur}/${n.target}`;
        const r = realpath(t, hops + 1);
        if (!r) return undefined;
        cur = r;
      } else cur = next;
    }
    return cur;
  };
  return {
    nodes,
    lstat: (p) => {
      const n = nodes.get(p);
      return n ? { kind: n.kind, mtimeMs: n.mtimeMs, size: n.kind === 'file' ? (n.text ?? 'x').length : 4096 } : undefined;
    },
    realpath,
    readFile: (p) => nodes.get(p)?.text,
    readdir: (p) => {
      const n = nodes.get(p);
      if (!n || n.kind !== 'dir') return undefined;
      const pre = p === '/' ? '/' : p + '/';
      return [...nodes.keys()].filter((k) => k !== '/' && k.startsWith(pre) && !k.slice(pre.length).includes('/')).map((k) => k.slice(pre.length));
    },
  };
}

function facts(fs, over = {}) {
  return { cwd: '/w', home: '/home/u', uid: 1000, gid: 1000, env: { PATH: '/usr/bin' }, fs, ...over };
}

function plan(settings, fsEntries, over) {
  clearMandatoryCache();
  return compile(parseSettings(settings), facts(fakeFs(fsEntries), over), ['cmd']);
}

/** Mounts as compact strings, e.g. "bind /w", "mask /w/.bashrc". */
function ops(p) {
  return p.mounts.map((m) => (m.op === 'mask' || m.op === 'pin' ? `${m.op} ${m.path}` : m.src && m.src !== m.dst ? `${m.op} ${m.src} ${m.dst}` : `${m.op} ${m.dst}`));
}
const idx = (list, s) => {
  const i = list.indexOf(s);
  assert.notEqual(i, -1, `missing mount "${s}" in\n${list.join('\n')}`);
  return i;
};

test('read-only root first, then dev/proc/private tmp, then allowWrite binds', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/', '/usr/bin/', '/home/u/']));
  assert.deepEqual(m.slice(0, 4), ['ro-bind /', 'dev /dev', 'proc /proc', 'tmpfs /tmp']);
  assert.ok(idx(m, 'bind /w') > 3);
});

test('denyRead masks come after the writable bind that contains them', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['/w'], denyRead: ['/w/secret'] } }, ['/w/secret/key', '/w/a']));
  assert.ok(idx(m, 'mask /w/secret') > idx(m, 'bind /w'));
});

test('allowRead re-opens inside a denied region; a more specific deny still wins', () => {
  const m = ops(
    plan({ filesystem: { denyRead: ['/data', '/data/pub/private'], allowRead: ['/data/pub'] } }, ['/data/pub/private/x', '/data/other', '/w/']),
  );
  const deny = idx(m, 'mask /data');
  const reopen = idx(m, 'ro-bind /data/pub');
  const inner = idx(m, 'mask /data/pub/private');
  assert.ok(deny < reopen && reopen < inner, m.join('\n'));
});

test('allowRead and denyRead on the same path: the allow wins (srt)', () => {
  const m = ops(plan({ filesystem: { denyRead: ['/data'], allowRead: ['/data'] } }, ['/data/x', '/w/']));
  assert.ok(!m.includes('mask /data'));
});

test('allowWrite inside a read-denied region is re-bound writable', () => {
  const m = ops(plan({ filesystem: { denyRead: ['/home/u'], allowWrite: ['/home/u/proj'] } }, ['/home/u/proj/', '/home/u/x', '/w/']));
  assert.ok(idx(m, 'mask /home/u') < idx(m, 'bind /home/u/proj'));
});

test('denyWrite inside allowWrite is a read-only bind after the writable one', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['/w'], denyWrite: ['/w/locked'] } }, ['/w/locked/', '/w/a']));
  assert.ok(idx(m, 'bind /w') < idx(m, 'ro-bind /w/locked'));
});

test('denyWrite outside any writable path emits nothing (already read-only)', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['/w'], denyWrite: ['/etc/x'] } }, ['/etc/x', '/w/']));
  assert.ok(!m.some((s) => s.includes('/etc/x')));
});

test('a missing denyWrite path under a writable root is masked (placeholder, removed by the launcher)', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['/w'], denyWrite: ['/w/later.txt'] } }, ['/w/']));
  assert.ok(idx(m, 'mask /w/later.txt') > idx(m, 'bind /w'));
});

test('mandatory denies come last: existing ones ro-bound, missing ones masked, parents pinned first', () => {
  const p = plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.git/hooks/pre-commit.sample', '/w/.git/config', '/w/.bashrc', '/w/src/a.js']);
  const m = ops(p);
  const bind = idx(m, 'bind /w');
  const pin = idx(m, 'pin /w/.git');
  assert.ok(bind < pin);
  assert.ok(pin < idx(m, 'ro-bind /w/.git/hooks'));
  assert.ok(pin < idx(m, 'ro-bind /w/.git/config'));
  assert.ok(idx(m, 'ro-bind /w/.bashrc') > bind);
  assert.ok(!m.some((x) => x.includes('commondir')), 'no commondir placeholder (it would break git meanwhile)');
  for (const f of ['.bash_profile', '.zshrc', '.zprofile', '.profile', '.gitconfig', '.gitmodules', '.ripgreprc', '.mcp.json', '.vscode', '.idea', '.claude'])
    assert.ok(idx(m, `mask /w/${f}`) > bind, f);
  // Everything after the last rule mount is mandatory: nothing policy-related is emitted after.
  const lastMandatory = Math.max(...m.map((s, i) => (s.includes('/w/.') ? i : -1)));
  assert.equal(lastMandatory, m.length - 1);
});

test('allowGitConfig leaves .git/config writable but keeps hooks protected', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'], allowGitConfig: true } }, ['/w/.git/hooks/x.sample', '/w/.git/config']));
  assert.ok(!m.includes('ro-bind /w/.git/config'));
  assert.ok(m.includes('ro-bind /w/.git/hooks'));
});

test('a missing .git is blocked at its first missing component (no git dir can be planted)', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/a']));
  assert.ok(m.includes('mask /w/.git'));
  assert.ok(!m.some((s) => s.includes('/w/.git/')));
});

test('a .git file (worktree/submodule) is protected itself', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.git']));
  assert.ok(m.includes('ro-bind /w/.git'));
});

test('nested mandatory denies down to mandatoryDenySearchDepth, node_modules skipped', () => {
  const fsEntries = ['/w/a/.bashrc', '/w/a/b/.vscode/s.json', '/w/a/b/c/d/.bashrc', '/w/node_modules/x/.bashrc', '/w/r/.git/config', '/w/r/.git/HEAD'];
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, fsEntries));
  assert.ok(m.includes('ro-bind /w/a/.bashrc'));
  assert.ok(m.includes('ro-bind /w/a/b/.vscode'));
  assert.ok(!m.some((s) => s.includes('/w/a/b/c/d')));
  assert.ok(!m.some((s) => s.includes('node_modules')));
  assert.ok(m.includes('mask /w/r/.git/hooks'));
  assert.ok(m.includes('ro-bind /w/r/.git/config'));
  assert.ok(idx(m, 'pin /w/a') < idx(m, 'ro-bind /w/a/.bashrc'));
  const deeper = ops(plan({ filesystem: { allowWrite: ['.'] }, mandatoryDenySearchDepth: 5 }, fsEntries));
  assert.ok(deeper.includes('ro-bind /w/a/b/c/d/.bashrc'));
});

test('mandatory scan: a FactCache hands out unchanged listings again (not re-listed), a changed directory is listed again', () => {
  clearMandatoryCache();
  const fs = fakeFs(['/w/a/x']);
  let reads = 0;
  const counting = { ...fs, readdir: (p) => (reads++, fs.readdir(p)) };
  // The fake's mtime stands in for the stamp of a real lstat.
  const cache = new FactCache(counting, (p) => {
    const n = fs.nodes.get(p);
    return n && { kind: n.kind, size: n.kind === 'file' ? 1 : 4096, stamp: String(n.mtimeMs) };
  });
  const cfg = parseSettings({ filesystem: { allowWrite: ['.'] } });
  compile(cfg, facts(cache.session()), ['cmd']);
  const first = reads;
  assert.ok(first > 0);
  compile(cfg, facts(cache.session()), ['cmd']);
  assert.equal(reads, first, 'second compile must not list directories again');
  fs.nodes.set('/w/a/.bashrc', { kind: 'file', mtimeMs: 1 });
  fs.nodes.get('/w/a').mtimeMs = 2;
  const m = ops(compile(cfg, facts(cache.session()), ['cmd']));
  assert.equal(reads, first + 1, 'only the changed directory is listed again');
  assert.ok(m.includes('ro-bind /w/a/.bashrc'));
});

test('a symlink planted at a protected path is masked, not followed (F4)', () => {
  const p = plan({ filesystem: { allowWrite: ['.'] } }, ['/w/decoy/', '/w/.vscode -> decoy']);
  const m = ops(p);
  assert.ok(m.includes('mask /w/.vscode'));
  assert.ok(!m.includes('ro-bind /w/decoy'));
});

test('~ and relative paths are expanded as srt does; symlinks are resolved', () => {
  const m = ops(
    plan({ filesystem: { allowWrite: ['~/out', 'build', '../sib'], denyRead: ['~/alias/s'] } }, ['/home/u/out/', '/w/build/', '/sib/', '/home/u/real/s', '/home/u/alias -> real']),
  );
  for (const s of ['bind /home/u/out', 'bind /w/build', 'bind /sib', 'mask /home/u/real/s']) assert.ok(m.includes(s), s);
});

test('missing allowWrite / denyRead paths are skipped with a note, never an abort', () => {
  const p = plan({ filesystem: { allowWrite: ['/nope'], denyRead: ['/gone'] } }, ['/w/']);
  assert.ok(p.notes.some((n) => n.includes('/nope')));
  assert.ok(p.notes.some((n) => n.includes('/gone')));
});

test('globs expand by a bounded walk; truncation is reported', () => {
  const entries = ['/w/a.pem', '/w/k/b.pem', '/w/k/c.txt', '/w/s/x'];
  const m = ops(plan({ filesystem: { allowWrite: ['.'], denyRead: ['**/*.pem', 'secrets*'] } }, entries));
  assert.ok(m.includes('mask /w/a.pem') && m.includes('mask /w/k/b.pem'));
  assert.ok(!m.includes('mask /w/k/c.txt'));
  const many = Array.from({ length: 25_000 }, (_, i) => `/w/d/f${i}`);
  const p = plan({ filesystem: { denyRead: ['/w/**/*.pem'] } }, many);
  assert.ok(p.notes.some((n) => n.includes('stopped after')), p.notes.join('\n'));
});

test('credential stores are masked by default and re-opened by allowRead', () => {
  const entries = ['/home/u/.ssh/id_ed25519', '/home/u/.aws/credentials', '/home/u/.docker/config.json', '/w/'];
  const m = ops(plan({}, entries));
  for (const s of ['mask /home/u/.ssh', 'mask /home/u/.aws', 'mask /home/u/.docker/config.json']) assert.ok(m.includes(s), s);
  const r = ops(plan({ filesystem: { allowRead: ['~/.aws'] } }, entries));
  assert.ok(!r.includes('mask /home/u/.aws') && r.includes('mask /home/u/.ssh'));
});

test('host sockets masked (U1): /run/user/<uid>, docker.sock, SSH agent dir', () => {
  const entries = ['/run/user/1000/bus', '/run/docker.sock', '/var/run -> /run', '/home/u/agent.sock', '/srv/ssh-abc/agent.1', '/w/'];
  const m = ops(plan({}, entries, { env: { SSH_AUTH_SOCK: '/home/u/agent.sock' } }));
  for (const s of ['mask /run/user/1000', 'mask /run/docker.sock', 'mask /home/u/agent.sock']) assert.ok(m.includes(s), s);
  assert.ok(!m.includes('mask /home/u'), 'a socket in $HOME does not hide $HOME');
  const n = ops(plan({}, entries, { env: { SSH_AUTH_SOCK: '/srv/ssh-abc/agent.1' } }));
  assert.ok(n.includes('mask /srv/ssh-abc'));
});

test('defaultDenyRead: no host root, system dirs + writable + allowRead bound, merged-/usr symlinks recreated', () => {
  const entries = ['/usr/bin/sh', '/bin -> usr/bin', '/etc/passwd', '/home/u/secret', '/home/u/docs/', '/w/'];
  const p = plan({ filesystem: { defaultDenyRead: true, allowWrite: ['.'], allowRead: ['~/docs'] } }, entries);
  const m = ops(p);
  assert.ok(!m.includes('ro-bind /'));
  for (const s of ['ro-bind /usr', 'ro-bind /etc', 'bind /w', 'ro-bind /home/u/docs', 'symlink /bin']) assert.ok(m.includes(s), `${s}\n${m.join('\n')}`);
  assert.ok(!m.some((s) => s.includes('/home/u/secret')));
});

test('cwd under /tmp stays visible read-only when not writable', () => {
  const m = ops(plan({ filesystem: { allowWrite: [] } }, ['/tmp/proj/'], { cwd: '/tmp/proj' }));
  assert.ok(idx(m, 'ro-bind /tmp/proj') > idx(m, 'tmpfs /tmp'));
});

test('allowWrite /tmp does not share the host /tmp', () => {
  const p = plan({ filesystem: { allowWrite: ['/tmp', '.'] } }, ['/tmp/x', '/w/']);
  assert.ok(!ops(p).includes('bind /tmp'));
  assert.ok(p.notes.some((n) => n.includes('private /tmp')));
});

test('environment: caller minus credentials, plus the sandbox markers; proxy vars in proxy mode', () => {
  const env = {
    PATH: '/usr/bin',
    HOME: '/home/u',
    GH_TOKEN: 't',
    AWS_SECRET_ACCESS_KEY: 's',
    OPENAI_API_KEY: 'k',
    PGPASSWORD: 'p',
    CLIENT_SECRET: 'c',
    LANG: 'C',
    HTTPS_PROXY: 'http://u:p@corp:8080',
    MYVAR: 'x',
    MYPREFIX_A: 'a',
    TOKENIZERS_PARALLELISM: 'false',
  };
  const p = plan({ env: { deny: ['MYVAR', 'MYPREFIX_*'] } }, ['/w/'], { env });
  assert.deepEqual(Object.keys(p.env).sort(), ['CORDON_SANDBOX', 'HOME', 'LANG', 'PATH', 'SANDBOX_RUNTIME', 'TMPDIR', 'TOKENIZERS_PARALLELISM']);
  assert.equal(p.env.TMPDIR, '/tmp');
  assert.equal(p.network.mode, 'none');
  const q = plan({ network: { allowedDomains: ['example.com', 'localhost:5432'] }, env: { allow: ['GH_TOKEN'] } }, ['/w/'], { env });
  assert.equal(q.network.mode, 'proxy');
  assert.deepEqual(q.network.relayPorts, [3128, 1080, 5432]);
  assert.equal(q.env.GH_TOKEN, 't');
  assert.equal(q.env.HTTPS_PROXY, 'http://localhost:3128');
  assert.match(q.env.GIT_SSH_COMMAND, /cordon-launcher connect %h %p/);
  assert.equal(q.env.NODE_USE_ENV_PROXY, '1');
});

test('seccomp and landlock settings map onto the plan', () => {
  const p = plan({ allowNestedUserNamespaces: true, network: { allowAllUnixSockets: true }, landlock: 'required', timeoutMs: 5000 }, ['/w/']);
  assert.deepEqual(p.seccomp, { enabled: true, unixSockets: { mode: 'all' }, allowNestedUserns: true });
  assert.equal(p.landlock.mode, 'required');
  assert.ok(p.landlock.writable.includes('/tmp') && p.landlock.writable.includes('/dev'));
  assert.equal(p.timeoutMs, 5000);
  const q = plan({ network: { allowUnixSockets: ['/run/x.sock'] } }, ['/w/']);
  assert.deepEqual(q.seccomp.unixSockets, { mode: 'only', paths: ['/run/x.sock'] });
});

test('the real filesystem works through realFacts (smoke)', () => {
  const p = compile(parseSettings({ filesystem: { allowWrite: ['.'] } }), realFacts({ cwd: '/usr' }), ['true']);
  assert.equal(p.mounts[0].op, 'ro-bind');
  assert.ok(ops(p).includes('bind /usr'));
});

test('filesystem.disabled: host root writable, no masks, Landlock off', () => {
  const p = plan({ filesystem: { disabled: true } }, ['/home/u/.ssh/id', '/w/']);
  assert.deepEqual(ops(p), ['bind /', 'dev /dev', 'proc /proc']);
  assert.equal(p.landlock.mode, 'off');
  assert.ok(p.notes.some((n) => n.includes('filesystem.disabled')));
});

test('ignored srt keys are reported in the notes', () => {
  const p = plan({ allowPty: true, ripgrep: { command: 'rg' }, network: { allowMachLookup: ['x'] } }, ['/w/']);
  assert.ok(p.notes.some((n) => n.startsWith('allowPty: ignored')));
  assert.ok(p.notes.some((n) => n.startsWith('ripgrep: ignored')));
  assert.ok(p.notes.some((n) => n.startsWith('network.allowMachLookup: ignored')));
});

test('settings files in a writable root are protected', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/policy.json', '/w/rel.json'], { settingsFiles: ['/w/policy.json', 'rel.json'] }));
  assert.ok(m.includes('ro-bind /w/policy.json'));
  assert.ok(m.includes('ro-bind /w/rel.json'), 'a relative --settings path is resolved against the cwd');
});

test('a widening rule that reaches through a symlink planted in a writable dir is skipped', () => {
  const entries = ['/w/out -> /home/u', '/w/dist -> build', '/w/build/', '/home/u/.bashrc'];
  const p = plan({ filesystem: { allowWrite: ['.', './out', './dist'], allowRead: ['./out'] } }, entries);
  const m = ops(p);
  assert.ok(!m.includes('bind /home/u'), m.join('\n'));
  assert.ok(p.notes.some((n) => n.includes('through the symlink /w/out')));
  // A link that stays inside the writable root is fine (and redundant here).
  assert.ok(!p.notes.some((n) => n.includes('/w/dist')));
});

test('as root, every home directory\'s credential stores are hidden', () => {
  const entries = ['/home/alice/.ssh/id', '/home/bob/.aws/credentials', '/root/.ssh/id', '/w/'];
  const m = ops(plan({}, entries, { uid: 0, home: '/root' }));
  for (const s of ['mask /home/alice/.ssh', 'mask /home/bob/.aws', 'mask /root/.ssh']) assert.ok(m.includes(s), s);
  const u = ops(plan({}, entries, { uid: 1000, home: '/home/alice' }));
  assert.ok(u.includes('mask /home/alice/.ssh') && !u.includes('mask /home/bob/.aws'));
});

test('F8: a denied path is also hidden under a second mount of the same filesystem', () => {
  const mounts = parseMountinfo(
    [
      '27 1 254:0 / / rw - ext4 /dev/vda rw',
      '40 27 254:0 /home /mnt/home\\040alias rw - ext4 /dev/vda rw',
      '41 27 254:0 /home/u/.ssh /srv/keys rw - ext4 /dev/vda rw',
      '42 27 0:50 / /data rw - tmpfs t rw',
    ].join('\n'),
  );
  assert.equal(mounts[1].mountPoint, '/mnt/home alias');
  const entries = ['/home/u/.ssh/id', '/mnt/home alias/u/.ssh/id', '/srv/keys/id', '/data/x', '/w/'];
  const m = ops(plan({}, entries, { mounts }));
  for (const s of ['mask /home/u/.ssh', 'mask /mnt/home alias/u/.ssh', 'mask /srv/keys']) assert.ok(m.includes(s), `${s}\n${m.join('\n')}`);
});

test('realFacts reads this machine\'s mounts', () => {
  const f = realFacts();
  assert.ok(f.mounts.some((m) => m.mountPoint === '/'));
});

test('settings locations and cordon\'s own files are protected inside writable roots', () => {
  const entries = ['/home/u/.config/', '/home/u/proj/', '/home/u/.nvm/bin/node', '/home/u/proj/node_modules/cordon/dist/cli.js'];
  const m = ops(
    plan({ filesystem: { allowWrite: ['~'] } }, entries, {
      cwd: '/home/u/proj',
      selfPaths: ['/home/u/.nvm/bin/node', '/home/u/proj/node_modules/cordon/dist'],
    }),
  );
  for (const s of ['mask /home/u/.config/cordon', 'mask /home/u/.srt-settings.json', 'ro-bind /home/u/.nvm/bin/node', 'ro-bind /home/u/proj/node_modules/cordon/dist'])
    assert.ok(m.includes(s), `${s}\n${m.join('\n')}`);
  assert.ok(idx(m, 'pin /home/u/.nvm/bin') < idx(m, 'ro-bind /home/u/.nvm/bin/node'));
});

test('missing credential stores in a writable home cannot be created', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['~'] } }, ['/home/u/.config/', '/home/u/.aws/config', '/w/']));
  for (const s of ['mask /home/u/.ssh', 'mask /home/u/.kube', 'mask /home/u/.config/gcloud', 'mask /home/u/.zshenv'])
    assert.ok(m.includes(s), `${s}\n${m.join('\n')}`);
  assert.ok(!m.includes('mask /home/u/.cargo') && !m.includes('mask /home/u/.local'), 'a missing parent is not masked for a nested store');
  // Not writable: nothing to protect, nothing emitted.
  const r = ops(plan({}, ['/home/u/.config/', '/w/']));
  assert.ok(!r.some((x) => x.startsWith('mask /home/u/.ssh')));
});

test('a writable home keeps what the host runs from it read-only (PATH dirs, session files, tool configs)', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['~'] } }, ['/home/u/.local/bin/tool', '/home/u/.cargo/bin/cargo', '/home/u/.config/', '/w/']));
  for (const s of ['ro-bind /home/u/.local/bin', 'ro-bind /home/u/.cargo/bin', 'mask /home/u/.config/git', 'mask /home/u/.pam_environment', 'mask /home/u/.cargo/config.toml'])
    assert.ok(m.includes(s), `${s}\n${m.join('\n')}`);
  assert.ok(!m.some((x) => x.includes('/home/u/.bun')), 'a missing parent (~/.bun) is not created');
  // Naming the path itself re-opens it; the others stay protected.
  const o = ops(plan({ filesystem: { allowWrite: ['~', '~/.cargo/bin'] } }, ['/home/u/.local/bin/tool', '/home/u/.cargo/bin/cargo', '/w/']));
  assert.ok(!o.includes('ro-bind /home/u/.cargo/bin') && o.includes('ro-bind /home/u/.local/bin'), o.join('\n'));
  // Home not writable: already read-only, so nothing is emitted for it.
  const r = ops(plan({}, ['/home/u/.local/bin/tool', '/w/']));
  assert.ok(!r.some((x) => x.includes('/home/u/.local/bin')), r.join('\n'));
});

test('"." run from / does not make the host writable; an explicit "/" does', () => {
  const p = plan({ filesystem: { allowWrite: ['.'] } }, ['/etc/x'], { cwd: '/' });
  assert.equal(ops(p)[0], 'ro-bind /');
  assert.ok(p.notes.some((n) => n.includes('resolves to /')));
  const q = plan({ filesystem: { allowWrite: ['/'] } }, ['/etc/x']);
  assert.equal(ops(q)[0], 'bind /');
});

test('cwd /tmp: the command starts in the private /tmp; the host /tmp is never bound', () => {
  const p = plan({}, ['/tmp/cordon-net-x/relay.sock', '/tmp/other'], { cwd: '/tmp' });
  const m = ops(p);
  assert.ok(!m.some((x) => x === 'bind /tmp' || x === 'ro-bind /tmp'), m.join('\n'));
  assert.ok(p.notes.some((n) => n.includes('private, empty /tmp')));
});

test('core.hooksPath inside the project (husky) is protected like .git/hooks', () => {
  const cfg = '[core]\n\trepositoryformatversion = 0\n\thooksPath = .husky\n';
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.git/hooks/', `/w/.git/config := ${cfg}`, '/w/.husky/pre-commit']));
  assert.ok(m.includes('ro-bind /w/.husky'), m.join('\n'));
  const missing = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.git/hooks/', '/w/.git/config := [core]\n hooksPath = "tools/hooks" ; c', '/w/tools/']));
  assert.ok(missing.includes('mask /w/tools/hooks'), missing.join('\n'));
  const nested = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/r/.git/HEAD', '/w/r/.git/config := [Core]\nhookspath=h', '/w/r/h/x']));
  assert.ok(nested.includes('ro-bind /w/r/h'), nested.join('\n'));
});

test('gitHooksPath reads only [core] hooksPath, last one wins, quotes and comments', () => {
  assert.equal(gitHooksPath('[core]\nhooksPath = a\n[alias]\nhooksPath = b\n[core]\n  hookspath = "c d" # x\n'), 'c d');
  assert.equal(gitHooksPath('[remote "o"]\nhooksPath = x\n'), undefined);
  assert.equal(gitHooksPath('[core]\nhooksPath = .husky/_ ; husky\n'), '.husky/_');
});

test('a missing .git inside a parent repository gets a directory placeholder (git keeps finding the repo above)', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/r/.git/HEAD', '/r/w/a'], { cwd: '/r/w' }));
  assert.equal(idx(m, 'dir /r/w/.git') + 1, idx(m, 'mask /r/w/.git'));
  assert.ok(!m.includes('dir /r/w/.vscode') && m.includes('mask /r/w/.vscode'));
  const solo = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/a']));
  assert.ok(!solo.includes('dir /w/.git') && solo.includes('mask /w/.git'));
  const c = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.git/HEAD', '/w/.git/commondir := ../x']));
  assert.ok(c.includes('ro-bind /w/.git/commondir'));
});

test('an empty protected file or directory (maybe a concurrent sandbox\'s placeholder) is masked, not bound', () => {
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.bashrc := ', '/w/.vscode/', '/w/.zshrc := x', '/w/.idea/ws.xml']));
  assert.ok(m.includes('mask /w/.bashrc') && m.includes('mask /w/.vscode'));
  assert.ok(!m.includes('dir /w/.vscode'), 'an existing empty dir needs no dir op');
  assert.ok(m.includes('ro-bind /w/.zshrc') && m.includes('ro-bind /w/.idea'));
});

test('an empty file where a protected path needs a directory (maybe a concurrent sandbox\'s placeholder) is masked itself', () => {
  // .claude/commands cannot exist under a file; but a placeholder file goes
  // away with its run, so it is adopted (masked), not just pinned.
  const m = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/.claude := ', '/w/.git := ', '/w/sub/.claude := gitdir-like text']));
  assert.ok(m.includes('mask /w/.claude') && m.includes('mask /w/.git'), m.join('\n'));
  assert.ok(!m.some((s) => s.startsWith('mask /w/.claude/') || s.startsWith('mask /w/.git/')), m.join('\n'));
  assert.ok(!m.includes('pin /w/.claude'), m.join('\n'));
});

test("srt's nine shell/tool files are protected in every writable root; the five home-only shell files only in a home (and $ZDOTDIR)", () => {
  const srtNine = ['.gitconfig', '.gitmodules', '.bashrc', '.bash_profile', '.zshrc', '.zprofile', '.profile', '.ripgreprc', '.mcp.json'];
  const homeFive = ['.bash_login', '.bash_logout', '.zshenv', '.zlogin', '.zlogout'];
  // A project cwd: srt's nine masked, the five not; an existing nested one is not bound either.
  const proj = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/src/', '/w/a/.zlogin', '/home/u/']));
  for (const n of srtNine) assert.ok(proj.includes(`mask /w/${n}`), `${n}\n${proj.join('\n')}`);
  for (const n of homeFive) assert.ok(!proj.some((s) => s.endsWith(`/${n}`)), `${n}\n${proj.join('\n')}`);
  // A writable home: all fourteen, existing ones read-only, a dotfile symlink masked.
  const home = ops(plan({ filesystem: { allowWrite: ['~'] } }, ['/home/u/.zlogin', '/home/u/dots/zshenv', '/home/u/.zshenv -> dots/zshenv', '/w/']));
  assert.ok(home.includes('ro-bind /home/u/.zlogin'), home.join('\n'));
  assert.ok(home.includes('mask /home/u/.zshenv'), home.join('\n'));
  for (const n of [...srtNine, '.bash_login', '.bash_logout', '.zlogout']) assert.ok(home.includes(`mask /home/u/${n}`), `${n}\n${home.join('\n')}`);
  // A home under a wider writable root (allowWrite /home): still the home's files.
  const wide = ops(plan({ filesystem: { allowWrite: ['/home'] } }, ['/home/u/', '/w/']));
  for (const n of homeFive) assert.ok(wide.includes(`mask /home/u/${n}`), `${n}\n${wide.join('\n')}`);
  // $ZDOTDIR: zsh's five there, bash's not.
  const z = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/w/zsh/'], { env: { PATH: '/usr/bin', ZDOTDIR: '/w/zsh' } }));
  for (const n of ['.zshenv', '.zprofile', '.zshrc', '.zlogin', '.zlogout']) assert.ok(z.includes(`mask /w/zsh/${n}`), `${n}\n${z.join('\n')}`);
  assert.ok(!z.includes('mask /w/zsh/.bash_login'));
  // Not writable: nothing emitted for the home.
  const ro = ops(plan({ filesystem: { allowWrite: ['.'] } }, ['/home/u/', '/w/']));
  assert.ok(!ro.some((s) => s.startsWith('mask /home/u/.z')), ro.join('\n'));
});
