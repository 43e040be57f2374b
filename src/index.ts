// Public API of the `cordon` package. Two entry points, one implementation:
// `Sandbox` (create once, run many) and the srt-compatible `SandboxManager`.
export {
  Sandbox,
  type SandboxPolicy,
  type SandboxOptions,
  type SpawnOptions,
  type RunOptions,
  type CommandResult,
  type CommandPolicy,
  type SandboxChild,
} from './sandbox/sandbox.js';
export {
  SandboxManager,
  type ISandboxManager,
  type SandboxAskCallback,
  type WrapWithSandboxOptions,
  type SandboxDependencyCheck,
  type FsReadRestrictionConfig,
  type FsWriteRestrictionConfig,
  type NetworkRestrictionConfig,
} from './sandbox/manager.js';
export {
  CordonError,
  PolicyError,
  UnsupportedError,
  SandboxClosedError,
  NotInitializedError,
  SandboxSetupError,
  AbortError,
} from './sandbox/errors.js';
export {
  SandboxRuntimeConfigSchema,
  NetworkConfigSchema,
  FilesystemConfigSchema,
  CredentialsConfigSchema,
  type SandboxRuntimeConfig,
  type SandboxRuntimeConfigInput,
} from './config/schema.js';
export { SandboxViolationStore, type SandboxViolationEvent } from './net/violations.js';
export type { Plan, Mount, NetworkPlan } from './policy/plan.js';
export type { AskCallback } from './net/policy.js';

import type { SandboxRuntimeConfigInput } from './config/schema.js';
/** srt's names for the config parts. */
export type NetworkConfig = NonNullable<SandboxRuntimeConfigInput['network']>;
export type FilesystemConfig = NonNullable<SandboxRuntimeConfigInput['filesystem']>;
export type IgnoreViolationsConfig = Record<string, string[]>;
