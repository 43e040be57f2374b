// In-memory tail of sandbox violations, with srt's SandboxViolationStore API
// (addViolation, getViolations, getCount, getTotalCount,
// getViolationsForCommand, clear, subscribe) so embedders can switch.

export interface SandboxViolationEvent {
  /** One display-safe line, e.g. `deny network-outbound evil.test:443 (host is not on the allow list)`. */
  line: string;
  /** The command text, when the embedder registered one. */
  command?: string;
  /** base64 of the command text (srt's attribution key). */
  encodedCommand?: string;
  timestamp: Date;
  /** cordon: the id the command was registered under. */
  commandId?: string;
  host?: string;
  port?: number;
  reason?: string;
}

export type ViolationListener = (violations: SandboxViolationEvent[]) => void;

/** C0/C1 controls, line/paragraph separators, bidi controls, zero-width and
 *  tag characters: what makes stored text render as something else. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]+/gu;

export function sanitizeViolationText(text: string): string {
  return String(text).replace(UNSAFE, ' ').replace(/[<>]/g, '').trim();
}

export function encodeCommand(command: string): string {
  return Buffer.from(command, 'utf8').toString('base64');
}

export class SandboxViolationStore {
  private violations: SandboxViolationEvent[] = [];
  private totalCount = 0;
  private readonly maxSize: number;
  private readonly listeners = new Set<ViolationListener>();

  constructor(maxSize = 100) {
    this.maxSize = maxSize;
  }

  addViolation(violation: SandboxViolationEvent): void {
    this.violations.push({ ...violation, line: sanitizeViolationText(violation.line) });
    this.totalCount++;
    if (this.violations.length > this.maxSize) this.violations = this.violations.slice(-this.maxSize);
    this.notify();
  }

  getViolations(limit?: number): SandboxViolationEvent[] {
    return limit === undefined ? [...this.violations] : this.violations.slice(-limit);
  }

  getCount(): number {
    return this.violations.length;
  }

  getTotalCount(): number {
    return this.totalCount;
  }

  /** By command text (srt) or by cordon command id. */
  getViolationsForCommand(command: string): SandboxViolationEvent[] {
    const enc = encodeCommand(command);
    return this.violations.filter((v) => v.commandId === command || v.encodedCommand === enc || v.command === command);
  }

  clear(): void {
    this.violations = [];
    this.notify();
  }

  subscribe(listener: ViolationListener): () => void {
    this.listeners.add(listener);
    listener(this.getViolations());
    return () => {
      this.listeners.delete(listener);
    };
  }

  private notify(): void {
    const all = this.getViolations();
    for (const l of this.listeners) {
      try {
        l(all);
      } catch {
        /* a listener's bug must not break the proxy that reported */
      }
    }
  }
}
