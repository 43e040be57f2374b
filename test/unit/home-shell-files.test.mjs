// Shell start-up files in a real sandbox: srt's nine cannot be planted in
// any writable directory; .bash_login .bash_logout .zshenv .zlogin .zlogout
// only where shells read them ($HOME, $ZDOTDIR), so an ordinary project
// directory may hold files of those names (and costs no placeholders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cordon, tempDir } from '../helpers.mjs';

const HOME_FIVE = ['.bash_login', '.bash_logout', '.zshenv', '.zlogin', '.zlogout'];

test('a writable home and $ZDOTDIR keep every shell start-up file unwritable; a project directory only srt\'s nine', () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = join(dir, 'home');
    const proj = join(dir, 'proj');
    const zdot = join(home, 'zsh');
    mkdirSync(zdot, { recursive: true });
    mkdirSync(proj);
    const tryWrite = (d, names) => names.map((n) => `echo x > ${d}/${n} 2>/dev/null && echo "WROTE ${d}/${n}"`).join('; ');
    const script = [
      tryWrite(home, [...HOME_FIVE, '.bashrc', '.profile']),
      tryWrite(zdot, ['.zshenv', '.zprofile', '.zshrc', '.zlogin', '.zlogout']),
      tryWrite(proj, [...HOME_FIVE, '.bashrc', '.zshrc', '.gitconfig']),
      'echo CORDON-RAN',
    ].join('; ');
    const r = cordon(['--allow-write', home, '--', '/bin/sh', '-c', script], {
      cwd: proj,
      env: { PATH: '/usr/bin:/bin', HOME: home, ZDOTDIR: zdot },
    });
    assert.match(r.stdout, /CORDON-RAN/, r.stderr);
    const wrote = [...r.stdout.matchAll(/^WROTE (\S+)$/gm)].map((m) => m[1]).sort();
    assert.deepEqual(wrote, HOME_FIVE.map((n) => join(proj, n)).sort(), r.stdout);
    // Nothing planted on the host where it was refused, no placeholder left.
    assert.deepEqual(readdirSync(home).sort(), ['zsh']);
    assert.deepEqual(readdirSync(zdot), []);
    for (const n of ['.bashrc', '.zshrc', '.gitconfig']) assert.ok(!existsSync(join(proj, n)), n);
  } finally {
    cleanup();
  }
});
