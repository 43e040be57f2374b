// Plans reused across the commands of a long-lived Sandbox. The compiler
// stays a pure function of (config, facts, command): a plan is reused only
// when the config, the non-filesystem facts and the environment are equal
// and every filesystem question the compile asked still gets the same
// answer (checked through the FactCache's stamps: one lstat per distinct
// directory or file the answers depend on, plus a direct look at what
// changed). The command line itself is not an input of anything but
// Plan.argv, so plans are shared across commands.
import type { SandboxRuntimeConfig } from '../config/schema.js';
import { compile, type CompileOptions } from './compile.js';
import { FactCache, type Facts, type FactQuestion } from './facts.js';
import type { Plan } from './plan.js';

interface Entry {
  env: Map<string, string>;
  plan: Plan;
  questions: FactQuestion[];
}

const ids = new WeakMap<object, number>();
let nextId = 1;
function idOf(o: object | undefined): number {
  if (o === undefined) return 0;
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

function envSnapshot(env: Facts['env']): Map<string, string> {
  const m = new Map<string, string>();
  for (const k in env) {
    const v = env[k];
    if (v !== undefined) m.set(k, v);
  }
  return m;
}

function sameEnv(snap: Map<string, string>, env: Facts['env']): boolean {
  let n = 0;
  for (const k in env) {
    const v = env[k];
    if (v === undefined) continue;
    n++;
    if (snap.get(k) !== v) return false;
  }
  return n === snap.size;
}

/** A copy the caller may change without touching the cached plan. */
export function copyPlan(p: Plan, argv: string[]): Plan {
  const us = p.seccomp.unixSockets;
  return {
    ...p,
    argv: [...argv],
    env: { ...p.env },
    mounts: p.mounts.map((m) => ({ ...m })),
    network: { ...p.network, relayPorts: [...p.network.relayPorts], publish: [...p.network.publish] },
    seccomp: { ...p.seccomp, unixSockets: us.mode === 'only' ? { mode: 'only', paths: [...us.paths] } : { ...us } },
    landlock: { ...p.landlock, writable: [...p.landlock.writable] },
    notes: [...p.notes],
  };
}

export class PlanCache {
  private readonly entries = new Map<string, Entry>();
  /** Counters for tests and benchmarks. */
  readonly stats = { hits: 0, compiles: 0 };

  constructor(
    readonly facts: FactCache = new FactCache(),
    private readonly max = 16,
  ) {}

  /** compile(config, facts, argv, opts) with facts.fs replaced by the cache's
   *  (facts.fs itself is not consulted). */
  compile(config: SandboxRuntimeConfig, facts: Facts, argv: string[], opts: CompileOptions = {}): Plan {
    const { onTimeBudget: _, ...keyOpts } = opts;
    const key =
      JSON.stringify([config, facts.cwd, facts.home, facts.uid, facts.gid, facts.tmpdir ?? null, facts.launcherPath ?? null, facts.settingsFiles ?? null, facts.selfPaths ?? null, keyOpts]) +
      `\0${idOf(facts.mounts)}:${idOf(facts.now)}`;
    const session = this.facts.session();
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      if (sameEnv(hit.env, facts.env) && session.unchanged(hit.questions)) {
        this.entries.set(key, hit); // most recently used last
        this.stats.hits++;
        return copyPlan(hit.plan, argv);
      }
    }
    // Same session: what the check already looked at is not asked twice.
    const log = session.record();
    let timed = false;
    this.stats.compiles++;
    const plan = compile(config, { ...facts, fs: session }, argv, {
      ...opts,
      onTimeBudget: () => {
        timed = true;
        opts.onTimeBudget?.();
      },
    });
    if (!timed) {
      this.entries.set(key, { env: envSnapshot(facts.env), plan: copyPlan(plan, []), questions: [...log.values()] });
      if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    }
    return plan;
  }
}
