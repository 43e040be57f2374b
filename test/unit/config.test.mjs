// Settings validation and lookup: every error names the file and the key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadSettings, parseSettings, SettingsError, applyOverrides, defaultSettings } from '../../dist/config/load.js';
import { tempDir } from '../helpers.mjs';

function expectError(fn, re) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof SettingsError, String(e));
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('an srt settings file validates unchanged', () => {
  const cfg = parseSettings({
    network: { allowedDomains: ['github.com', '*.npmjs.org', 'api.example.com:443'], deniedDomains: ['*:22'], allowLocalBinding: false },
    filesystem: { denyRead: ['~/.ssh'], allowRead: [], allowWrite: ['.'], denyWrite: ['.env'], allowGitConfig: true },
    ignoreViolations: { '*': ['/usr/bin'] },
    enableWeakerNestedSandbox: false,
    allowNestedUserNamespaces: false,
    mandatoryDenySearchDepth: 3,
    allowPty: true,
  });
  assert.deepEqual(cfg.filesystem.allowWrite, ['.']);
});

test('unknown key: error names the key path', () => {
  expectError(() => parseSettings({ filesystem: { allowWrites: ['.'] } }, 'f.json'), /^f\.json: filesystem: unknown key "allowWrites"/);
});

test('wrong type: error names the key path with the index', () => {
  expectError(() => parseSettings({ filesystem: { denyRead: ['ok', 3] } }, 'f.json'), /^f\.json: filesystem\.denyRead\[1\]: /);
});

test('bad domain pattern is rejected with the key path', () => {
  expectError(() => parseSettings({ network: { allowedDomains: ['*.com'] } }, 'f.json'), /network\.allowedDomains\[0\]/);
  expectError(() => parseSettings({ network: { allowedDomains: ['*'] } }, 'f.json'), /network\.allowedDomains\[0\]/);
  assert.ok(parseSettings({ network: { deniedDomains: ['*'] } }));
});

test('unsupported srt features fail closed', () => {
  expectError(() => parseSettings({ network: { mitmProxy: { socketPath: '/x', domains: ['a.com'] } } }, 'f.json'), /network\.mitmProxy: not supported/);
  expectError(() => parseSettings({ credentials: { envVars: [{ name: 'X', mode: 'mask' }] } }, 'f.json'), /credentials\.envVars\[0\]\.mode/);
});

test('landlock and depth ranges are validated', () => {
  expectError(() => parseSettings({ landlock: 'sometimes' }, 'f.json'), /landlock/);
  expectError(() => parseSettings({ mandatoryDenySearchDepth: 11 }, 'f.json'), /mandatoryDenySearchDepth/);
});

test('lookup order: --settings, XDG, ~/.srt-settings.json, default', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.config', 'cordon'), { recursive: true });
    const env = {};
    assert.equal(loadSettings({ env, home }).source.kind, 'default');
    writeFileSync(join(home, '.srt-settings.json'), JSON.stringify({ filesystem: { allowWrite: ['/srt'] } }));
    let r = loadSettings({ env, home });
    assert.equal(r.source.kind, 'srt');
    assert.deepEqual(r.config.filesystem.allowWrite, ['/srt']);
    writeFileSync(join(home, '.config', 'cordon', 'settings.json'), JSON.stringify({ filesystem: { allowWrite: ['/xdg'] } }));
    assert.equal(loadSettings({ env, home }).source.kind, 'xdg');
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'cordon'), { recursive: true });
    writeFileSync(join(xdg, 'cordon', 'settings.json'), '{}');
    r = loadSettings({ env: { XDG_CONFIG_HOME: xdg }, home });
    assert.equal(r.source.path, join(xdg, 'cordon', 'settings.json'));
    const flag = join(dir, 'p.json');
    writeFileSync(flag, JSON.stringify({ network: { allowedDomains: ['a.com'] } }));
    r = loadSettings({ settingsPath: flag, env, home });
    assert.equal(r.source.kind, 'flag');
    assert.deepEqual(r.config.network.allowedDomains, ['a.com']);
  } finally {
    cleanup();
  }
});

test('missing --settings, empty file and bad JSON are one-line errors naming the file', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'h');
    expectError(() => loadSettings({ settingsPath: join(dir, 'nope.json'), env: {}, home }), /nope\.json: settings file does not exist/);
    writeFileSync(join(dir, 'e.json'), '  ');
    expectError(() => loadSettings({ settingsPath: join(dir, 'e.json'), env: {}, home }), /e\.json: settings file is empty/);
    writeFileSync(join(dir, 'b.json'), '{"network": ');
    expectError(() => loadSettings({ settingsPath: join(dir, 'b.json'), env: {}, home }), /b\.json: not valid JSON/);
    writeFileSync(join(dir, 'k.json'), '{"network": {"allowedDomain": []}}');
    expectError(() => loadSettings({ settingsPath: join(dir, 'k.json'), env: {}, home }), /k\.json: network: unknown key "allowedDomain"/);
  } finally {
    cleanup();
  }
});

test('default settings: cwd writable, no network; flag overrides append and validate', () => {
  const d = defaultSettings();
  assert.deepEqual(d.filesystem.allowWrite, ['.']);
  assert.deepEqual(d.network.allowedDomains, []);
  const o = applyOverrides(d, { allowNet: ['example.com'], denyRead: ['/x'], denyReadByDefault: true });
  assert.deepEqual(o.network.allowedDomains, ['example.com']);
  assert.deepEqual(o.filesystem.denyRead, ['/x']);
  assert.equal(o.filesystem.defaultDenyRead, true);
  expectError(() => applyOverrides(d, { allowNet: ['*.com'] }), /allowedDomains/);
});

test('the zod-free built-in default equals what the schema yields', () => {
  assert.deepEqual(defaultSettings(), parseSettings({ filesystem: { allowWrite: ['.'] } }));
});
