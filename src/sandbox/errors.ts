// Typed errors of the library. Each message is one line a user can act on
// (what went wrong and what to do), because embedders print them verbatim.

/** Base class: every error cordon throws on purpose is a CordonError. */
export class CordonError extends Error {
  /** Stable machine-readable code (also what `cordon` maps to an exit status). */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The policy (settings / config object) is invalid. `path` names the key. */
export class PolicyError extends CordonError {
  readonly path: string | undefined;
  constructor(message: string, path?: string, options?: { cause?: unknown }) {
    super('EPOLICY', path ? `invalid policy at ${path}: ${message}` : `invalid policy: ${message}`, options);
    this.path = path;
  }
}

/** This machine cannot run the sandbox (platform, launcher, kernel feature). */
export class UnsupportedError extends CordonError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EUNSUPPORTED', message, options);
  }
}

/** A method was called on a Sandbox after close() (or a reset() manager). */
export class SandboxClosedError extends CordonError {
  constructor(what = 'sandbox') {
    super('ECLOSED', `${what} is closed: create a new one (Sandbox.create) or call SandboxManager.initialize() again`);
  }
}

/** SandboxManager used before initialize(). */
export class NotInitializedError extends CordonError {
  constructor(method: string) {
    super('ENOTINIT', `SandboxManager.${method}(): call SandboxManager.initialize(config) first`);
  }
}

/** The launcher could not build the sandbox (it exited 125 before the
 *  command started). The message is the launcher's own `step: reason` line. */
export class SandboxSetupError extends CordonError {
  readonly stderr: string;
  constructor(message: string, stderr: string) {
    super('ESETUP', message);
    this.stderr = stderr;
  }
}

/** The caller's AbortSignal fired before the command could start. */
export class AbortError extends CordonError {
  constructor(reason?: unknown) {
    super('ABORT_ERR', 'the operation was aborted', { cause: reason });
  }
}
