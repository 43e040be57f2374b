// The zod-free half of settings handling: where settings files are looked
// for, and the built-in default. The CLI uses it to skip loading the schema
// (tens of ms of start-up) when there is no file to validate.
import { join } from 'node:path';
import type { SandboxRuntimeConfig } from './schema.js';

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

/** The files looked for when --settings is not given, in order. */
export function settingsCandidates(env: Record<string, string | undefined>, home: string): Array<{ kind: 'xdg' | 'srt'; path: string }> {
  const xdgBase = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(home, '.config');
  return [
    { kind: 'xdg', path: join(xdgBase, 'cordon', 'settings.json') },
    { kind: 'srt', path: join(home, '.srt-settings.json') },
  ];
}

/** The built-in policy when no file exists: the working directory writable
 *  (plus the private /tmp the compiler always adds), no network. Credential
 *  stores and host sockets are hidden by the compiler under every policy.
 *  Kept equal to what the schema yields for `{filesystem:{allowWrite:['.']}}`
 *  (a unit test checks). */
export function defaultSettings(): SandboxRuntimeConfig {
  return {
    network: { allowedDomains: [], deniedDomains: [] },
    filesystem: { denyRead: [], allowWrite: ['.'], denyWrite: [] },
  };
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

/** Appends the overrides (no validation: see applyOverrides / checkOverrides). */
export function mergeOverrides(cfg: SandboxRuntimeConfig, o: FlagOverrides): SandboxRuntimeConfig {
  return {
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
      ...(o.denyReadByDefault || cfg.filesystem.defaultDenyRead !== undefined
        ? { defaultDenyRead: o.denyReadByDefault ? true : cfg.filesystem.defaultDenyRead }
        : {}),
    },
  };
}

/** Keys that are accepted for compatibility but change nothing here. */
export function ignoredKeys(cfg: SandboxRuntimeConfig): string[] {
  const out: string[] = [];
  const top: Array<[keyof SandboxRuntimeConfig, string]> = [
    ['enableWeakerNetworkIsolation', 'macOS only'],
    ['allowAppleEvents', 'macOS only'],
    ['allowPty', 'macOS only'],
    ['ripgrep', 'cordon needs no ripgrep'],
    ['seccomp', 'cordon-launcher applies seccomp itself'],
    ['bwrapPath', 'cordon needs no bubblewrap'],
    ['socatPath', 'cordon needs no socat'],
    ['javaAgentJarPath', 'not used by cordon'],
    ['windows', 'Windows only'],
    ['git', 'not used by cordon'],
  ];
  for (const [k, why] of top) if (cfg[k] !== undefined) out.push(`${k}: ignored (${why})`);
  if (cfg.network.allowMachLookup !== undefined) out.push('network.allowMachLookup: ignored (macOS only)');
  if (cfg.credentials?.allowPlaintextInject !== undefined) out.push('credentials.allowPlaintextInject: ignored (no masking)');
  return out;
}
