// Finding, reading and validating a settings file. Every failure is a
// SettingsError whose message is one line naming the file and the key path,
// because the CLI prints it verbatim and exits 2.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandboxRuntimeConfigSchema, type SandboxRuntimeConfig } from './schema.js';

export class SettingsError extends Error {
  readonly file: string | undefined;
  readonly keyPath: string | undefined;
  constructor(message: string, file?: string, keyPath?: string) {
    super(message);
    this.name = 'SettingsError';
    this.file = file;
    this.keyPath = keyPath;
  }
}

export type SettingsSource =
  | { kind: 'flag'; path: string }
  | { kind: 'xdg'; path: string }
  | { kind: 'srt'; path: string }
  | { kind: 'default' };

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
  const xdgBase = opts.env.XDG_CONFIG_HOME && opts.env.XDG_CONFIG_HOME.startsWith('/') ? opts.env.XDG_CONFIG_HOME : join(opts.home, '.config');
  const xdg = join(xdgBase, 'cordon', 'settings.json');
  const xdgText = readIfPresent(xdg, read);
  if (xdgText !== undefined) return { config: parseText(xdgText, xdg), source: { kind: 'xdg', path: xdg } };
  const srt = join(opts.home, '.srt-settings.json');
  const srtText = readIfPresent(srt, read);
  if (srtText !== undefined) return { config: parseText(srtText, srt), source: { kind: 'srt', path: srt } };
  return { config: defaultSettings(), source: { kind: 'default' } };
}

/** The built-in policy when no file exists: the working directory writable
 *  (plus the private /tmp the compiler always adds), no network. Credential
 *  stores are masked by the compiler for every policy. */
export function defaultSettings(): SandboxRuntimeConfig {
  return parseSettings({ filesystem: { allowWrite: ['.'] } }, '<default>');
}

/** Command-line additions, appended to the lists of the loaded settings. */
export interface FlagOverrides {
  allowNet?: string[];
  denyNet?: string[];
  allowWrite?: string[];
  denyWrite?: string[];
  denyRead?: string[];
  allowRead?: string[];
  denyReadByDefault?: boolean;
}

export function applyOverrides(cfg: SandboxRuntimeConfig, o: FlagOverrides): SandboxRuntimeConfig {
  const merged = {
    ...cfg,
    network: {
      ...cfg.network,
      allowedDomains: [...cfg.network.allowedDomains, ...(o.allowNet ?? [])],
      deniedDomains: [...cfg.network.deniedDomains, ...(o.denyNet ?? [])],
    },
    filesystem: {
      ...cfg.filesystem,
      allowWrite: [...cfg.filesystem.allowWrite, ...(o.allowWrite ?? [])],
      denyWrite: [...cfg.filesystem.denyWrite, ...(o.denyWrite ?? [])],
      denyRead: [...cfg.filesystem.denyRead, ...(o.denyRead ?? [])],
      allowRead: [...(cfg.filesystem.allowRead ?? []), ...(o.allowRead ?? [])],
      defaultDenyRead: o.denyReadByDefault ? true : cfg.filesystem.defaultDenyRead,
    },
  };
  // Re-validate so a bad --allow-net is reported like a bad settings entry.
  return parseSettings(merged, 'command line');
}
