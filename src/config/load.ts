// Finding, reading and validating a settings file. Every failure is a
// SettingsError whose message is one line naming the file and the key path,
// because the CLI prints it verbatim and exits 2.
import { readFileSync } from 'node:fs';
import { SandboxRuntimeConfigSchema, type SandboxRuntimeConfig } from './schema.js';
import { defaultSettings, mergeOverrides, settingsCandidates, SettingsError, type FlagOverrides, type SettingsSource } from './locate.js';

export { defaultSettings, settingsCandidates, SettingsError, type FlagOverrides, type SettingsSource };

export interface LoadOptions {
  settingsPath?: string;
  env: Record<string, string | undefined>;
  home: string;
  /** Injected for tests; defaults to fs.readFileSync. */
  readFile?: (path: string) => string;
}

function formatKeyPath(path: ReadonlyArray<string | number>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s || '(root)';
}

/** Validates an already-parsed settings object. `file` is only used in
 *  messages ("<object>" for library callers). */
export function parseSettings(raw: unknown, file = '<settings>'): SandboxRuntimeConfig {
  const r = SandboxRuntimeConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const keyPath = formatKeyPath(issue.path);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
  throw new SettingsError(`${file}: ${keyPath}: ${msg}${more}`, file, keyPath);
}

function readIfPresent(path: string, read: (p: string) => string): string | undefined {
  try {
    return read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new SettingsError(`${path}: cannot read settings (${code ?? String(e)})`, path);
  }
}

function parseText(text: string, path: string): SandboxRuntimeConfig {
  if (text.trim() === '') throw new SettingsError(`${path}: settings file is empty (delete it or put a config in it)`, path);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SettingsError(`${path}: not valid JSON: ${(e as Error).message}`, path);
  }
  return parseSettings(raw, path);
}

/**
 * Lookup order: --settings, $XDG_CONFIG_HOME/cordon/settings.json (or
 * ~/.config/cordon/settings.json), ~/.srt-settings.json, built-in default.
 * A file named with --settings must exist; the others are optional, but once
 * found they must be valid (falling back would silently drop rules).
 */
export function loadSettings(opts: LoadOptions): { config: SandboxRuntimeConfig; source: SettingsSource } {
  const read = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  if (opts.settingsPath !== undefined) {
    const text = readIfPresent(opts.settingsPath, read);
    if (text === undefined) throw new SettingsError(`${opts.settingsPath}: settings file does not exist`, opts.settingsPath);
    return { config: parseText(text, opts.settingsPath), source: { kind: 'flag', path: opts.settingsPath } };
  }
  for (const c of settingsCandidates(opts.env, opts.home)) {
    const text = readIfPresent(c.path, read);
    if (text !== undefined) return { config: parseText(text, c.path), source: c };
  }
  return { config: defaultSettings(), source: { kind: 'default' } };
}

/** Command-line additions appended to the loaded settings, validated like
 *  a settings entry. */
export function applyOverrides(cfg: SandboxRuntimeConfig, o: FlagOverrides): SandboxRuntimeConfig {
  return parseSettings(mergeOverrides(cfg, o), 'command line');
}
