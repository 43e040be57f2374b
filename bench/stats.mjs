// Statistics and scheduling for the benchmark. The machine is shared and
// noisy, so every comparison runs its variants interleaved (A, B, A, B, ...)
// after a warm-up, and reports the median with min and max: drift then hits
// every variant alike, and ratios stay meaningful when absolute times do not.

/** Median of a list of numbers (mean of the two middle ones for even n). */
export function median(xs) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** n, median, min, max of a sample, or null for an empty one. */
export function summarize(xs) {
  if (!xs.length) return null;
  let min = Infinity, max = -Infinity;
  for (const x of xs) { if (x < min) min = x; if (x > max) max = x; }
  return { n: xs.length, median: median(xs), min, max };
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a, b) {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

/**
 * The order in which `interleave` runs its variants: `warmup` passes over
 * every variant (discarded), then `rounds` passes, each visiting every
 * variant once. Exported so the schedule itself is unit-tested.
 */
export function schedule(names, rounds, warmup = 1) {
  const out = [];
  for (let w = 0; w < warmup; w++) for (const name of names) out.push({ name, warm: true });
  for (let r = 0; r < rounds; r++) for (const name of names) out.push({ name, warm: false });
  return out;
}

/**
 * Runs variants interleaved. Each variant is { name, run } where run() is
 * async and returns one sample (a number) or an array of samples (e.g. one
 * per request of a batch). A variant whose run throws is dropped from the
 * remaining schedule and reported as skipped with the error's first line,
 * so one broken piece never takes the others' numbers with it.
 * Returns { samples: Map<name, number[]>, failed: Map<name, string> }.
 */
export async function interleave(variants, { rounds, warmup = 1 }) {
  const byName = new Map(variants.map((v) => [v.name, v]));
  const samples = new Map(variants.map((v) => [v.name, []]));
  const failed = new Map();
  for (const step of schedule(variants.map((v) => v.name), rounds, warmup)) {
    if (failed.has(step.name)) continue;
    let got;
    try {
      got = await byName.get(step.name).run();
    } catch (e) {
      failed.set(step.name, firstLine(e));
      continue;
    }
    if (step.warm) continue;
    for (const x of Array.isArray(got) ? got : [got]) {
      if (typeof x === 'number' && Number.isFinite(x)) samples.get(step.name).push(x);
    }
  }
  return { samples, failed };
}

export function firstLine(e) {
  const s = String(e?.message ?? e).trim();
  return (s.split('\n').find((l) => l.trim()) ?? s).slice(0, 300);
}

/** Compact number formatting for tables: 3 significant digits. */
export function fmt(x, digits = 3) {
  if (x == null || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 10 ** digits) return String(Math.round(x));
  return Number(x.toPrecision(digits)).toString();
}
