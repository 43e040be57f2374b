// Policy validation, in its own module: it pulls in the settings schema
// (zod, ~30 ms of module loading), which `cordon --allow-net ...` without a
// settings file never needs, so sandbox.ts only loads it when create() is
// handed an unvalidated policy.
import { parseSettings, SettingsError } from '../config/load.js';
import type { SandboxRuntimeConfig } from '../config/schema.js';
import { PolicyError } from './errors.js';

/** Validates a policy object; PolicyError names the key path. */
export function parsePolicy(policy: unknown, what = 'policy'): SandboxRuntimeConfig {
  try {
    return parseSettings(policy ?? {}, what);
  } catch (e) {
    if (e instanceof SettingsError) {
      // "<what>: <key path>: <problem>" -> PolicyError(problem, key path)
      const prefix = `${what}: ${e.keyPath ?? ''}: `;
      const msg = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message.replace(/^[^:]*: /, '');
      throw new PolicyError(msg, e.keyPath === '(root)' ? undefined : e.keyPath, { cause: e });
    }
    throw e;
  }
}
