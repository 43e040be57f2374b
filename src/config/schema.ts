// The settings schema: srt's key names and meanings (so an existing
// ~/.srt-settings.json works unchanged) plus cordon's additions. Strict: a
// misspelt key is an error naming the key path, never a silently weaker
// sandbox. Keys that only mean something on macOS/Windows, or that configure
// helper programs cordon does not use, are accepted and reported as ignored
// (see ignoredKeys).
import { z } from 'zod';
import { patternError } from '../net/patterns.js';

const pathEntry = z.string().min(1, 'path cannot be empty');
const pathList = z.array(pathEntry);

function domainList(list: 'allowed' | 'denied') {
  return z.array(
    z.string().superRefine((v, ctx) => {
      const err = patternError(v, list);
      if (err) ctx.addIssue({ code: z.ZodIssueCode.custom, message: err });
    }),
  );
}

const port = z.number().int().min(1).max(65535);

const cidr = z.string().refine(
  (v) => {
    const [addr, bits, ...rest] = v.split('/');
    if (rest.length || !addr) return false;
    const fam = addr.includes(':') ? 6 : /^\d+\.\d+\.\d+\.\d+$/.test(addr) ? 4 : 0;
    if (!fam) return false;
    if (bits === undefined) return true;
    if (!/^\d+$/.test(bits)) return false;
    return Number(bits) <= (fam === 4 ? 32 : 128);
  },
  { message: 'expected an IP address or CIDR range, e.g. "10.0.0.0/8" or "fc00::/7"' },
);

export const NetworkConfigSchema = z
  .object({
    allowedDomains: domainList('allowed').default([]),
    deniedDomains: domainList('denied').default([]),
    deniedDomainReasons: z.record(z.string(), z.string().min(1)).optional(),
    strictAllowlist: z.boolean().optional(),
    deniedResolvedAddresses: z.array(cidr).optional(),
    /** srt: macOS only. cordon on Linux: the only host Unix socket paths the
     *  command may connect to (the launcher performs the connect). */
    allowUnixSockets: z.array(z.string().min(1).refine((p) => p.startsWith('/') || p.startsWith('~'), 'must be an absolute path')).optional(),
    allowAllUnixSockets: z.boolean().optional(),
    allowLocalBinding: z.boolean().optional(),
    allowMachLookup: z.array(z.string()).optional(),
    httpProxyPort: port.optional(),
    socksProxyPort: port.optional(),
    mitmProxy: z.unknown().optional(),
    parentProxy: z.unknown().optional(),
    tlsTerminate: z.unknown().optional(),
    filterRequest: z.unknown().optional(),
  })
  .strict();

export const FilesystemConfigSchema = z
  .object({
    disabled: z.boolean().optional(),
    denyRead: pathList.default([]),
    allowRead: pathList.optional(),
    allowWrite: pathList.default([]),
    denyWrite: pathList.default([]),
    allowGitConfig: z.boolean().optional(),
    /** cordon: build the root from an allowlist (system dirs + writable paths
     *  + allowRead) instead of the whole host read-only. */
    defaultDenyRead: z.boolean().optional(),
  })
  .strict();

const credentialEntry = (key: 'path' | 'name') =>
  z
    .object({
      [key]: z.string().min(1),
      mode: z.enum(['deny', 'mask']),
    })
    .passthrough();

export const CredentialsConfigSchema = z
  .object({
    files: z.array(credentialEntry('path')).optional(),
    envVars: z.array(credentialEntry('name')).optional(),
    allowPlaintextInject: z.boolean().optional(),
    awsPairs: z.array(z.unknown()).optional(),
    sigv4: z.unknown().optional(),
  })
  .strict();

export const EnvConfigSchema = z
  .object({
    /** Variables (exact names, or a prefix ending in `*`) removed from the
     *  command's environment in addition to the built-in credential list. */
    deny: z.array(z.string().min(1)).optional(),
    /** Variables passed through even though the built-in list would remove
     *  them. */
    allow: z.array(z.string().min(1)).optional(),
  })
  .strict();

export const SandboxRuntimeConfigSchema = z
  .object({
    network: NetworkConfigSchema.default({}),
    filesystem: FilesystemConfigSchema.default({}),
    credentials: CredentialsConfigSchema.optional(),
    ignoreViolations: z.record(z.string(), z.array(z.string())).optional(),
    enableWeakerNestedSandbox: z.boolean().optional(),
    allowNestedUserNamespaces: z.boolean().optional(),
    enableWeakerNetworkIsolation: z.boolean().optional(),
    allowAppleEvents: z.boolean().optional(),
    allowPty: z.boolean().optional(),
    ripgrep: z.unknown().optional(),
    mandatoryDenySearchDepth: z.number().int().min(1).max(10).optional(),
    seccomp: z.unknown().optional(),
    bwrapPath: z.string().optional(),
    socatPath: z.string().optional(),
    javaAgentJarPath: z.string().optional(),
    windows: z.unknown().optional(),
    git: z.unknown().optional(),
    // cordon additions
    landlock: z.enum(['required', 'best-effort', 'off']).optional(),
    timeoutMs: z.number().int().min(0).optional(),
    env: EnvConfigSchema.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    // Features whose whole point is on the network path cordon does not
    // implement: refusing is fail-closed; pretending would change what
    // the user believes the proxy enforces.
    for (const k of ['mitmProxy', 'parentProxy', 'tlsTerminate', 'filterRequest'] as const) {
      if (cfg.network[k] !== undefined)
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['network', k], message: 'not supported by cordon' });
    }
    for (const [group, list] of [
      ['files', cfg.credentials?.files],
      ['envVars', cfg.credentials?.envVars],
    ] as const) {
      list?.forEach((e, i) => {
        if (e.mode === 'mask')
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['credentials', group, i, 'mode'],
            message: 'credential masking is not supported by cordon; use mode "deny"',
          });
      });
    }
    if (cfg.credentials?.awsPairs?.length)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['credentials', 'awsPairs'], message: 'not supported by cordon' });
    for (const list of ['denyRead', 'denyWrite'] as const) {
      cfg.filesystem[list].forEach((p, i) => {
        if (/[*?[]/.test(p) && /\/+$/.test(p))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['filesystem', list, i],
            message: `deny glob "${p}" ends in "/", so it can match nothing; write "${p.replace(/\/+$/, '')}"`,
          });
      });
    }
  });

export type SandboxRuntimeConfig = z.output<typeof SandboxRuntimeConfigSchema>;
/** What callers may pass (defaults not yet applied). */
export type SandboxRuntimeConfigInput = z.input<typeof SandboxRuntimeConfigSchema>;

export { ignoredKeys } from './locate.js';
