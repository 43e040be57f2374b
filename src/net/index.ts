// Public surface of the host-side network: what the CLI, the config
// validator and the library import.
export { startNetwork, proxyEnvFor, type NetworkSession, type NetworkSessionOptions, type PublishedPort } from './session.js';
export { SandboxViolationStore, type SandboxViolationEvent, type ViolationListener } from './violations.js';
export { parsePattern, patternError, matches, type Pattern, type ParseResult, type ListKind } from './patterns.js';
export { canonicalizeHost, classifyAddress, parseAddressRange, type AddressClass } from './host.js';
export {
  decide,
  compilePolicy,
  compilePerCommand,
  allowsHostLoopbackPort,
  type NetworkConfig,
  type PerCommandLists,
  type AskCallback,
  type Decision,
} from './policy.js';
export { AddressGuard, type Resolver, type ResolvedAddress } from './resolve.js';
