/** Small statistics helpers for the benchmarks: percentiles, medians, spreads. */

/** The q-quantile (0..1) of `values` by nearest rank; NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const count = values.length;
  let max = Number.NaN;
  let sum = 0;
  for (const value of values) {
    sum += value;
    if (!(value <= max)) max = value;
  }
  return {
    count,
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    p99: quantile(values, 0.99),
    max,
    mean: count === 0 ? Number.NaN : sum / count,
  };
}

/** Median and range of repeated measurements of one figure. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(runs: readonly number[]): Spread {
  return { median: quantile(runs, 0.5), min: Math.min(...runs), max: Math.max(...runs), runs: [...runs] };
}

/** `12.3k`, `1.23M`: compact numbers for human-readable lines. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(digits)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toPrecision(digits)}k`;
  if (abs >= 100) return value.toFixed(0);
  return value.toPrecision(digits);
}

export function fmtSpread(s: Spread, digits = 3): string {
  return s.runs.length > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)}, n=${s.runs.length})` : fmt(s.median, digits);
}

export function nowMs(): number {
  return performance.now();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` until at least `minMs` have passed and `minRuns` calls were made (after `warmup`
 * calls), and returns the calls made and the time taken.
 */
export async function timeLoop(
  fn: () => Promise<unknown> | unknown,
  options: { minMs: number; minRuns?: number; warmup?: number; maxRuns?: number },
): Promise<{ runs: number; ms: number; perRunMs: number[] }> {
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn();
  const perRunMs: number[] = [];
  const start = nowMs();
  let runs = 0;
  for (;;) {
    const t0 = nowMs();
    await fn();
    perRunMs.push(nowMs() - t0);
    runs++;
    const elapsed = nowMs() - start;
    if (runs >= (options.maxRuns ?? Number.POSITIVE_INFINITY)) return { runs, ms: elapsed, perRunMs };
    if (elapsed >= options.minMs && runs >= (options.minRuns ?? 1)) return { runs, ms: elapsed, perRunMs };
  }
}

/**
 * Runs the functions in turn, each for a block of `blockMs` (at least one call), until `minMs`
 * have passed and `minRounds` rounds were made (after one warm-up round): every side sees the
 * same machine at nearly the same moments, which matters on a shared, noisy machine. Blocks
 * rather than single calls, so one side's tail (e.g. ORT's spinning threads) barely touches the
 * other. Returns each side's per-call times (ms).
 */
export async function pairedLoop(
  fns: readonly (() => Promise<unknown> | unknown)[],
  options: { minMs: number; blockMs?: number; minRounds?: number; warmupRounds?: number },
): Promise<number[][]> {
  for (let w = 0; w < (options.warmupRounds ?? 1); w++) for (const fn of fns) await fn();
  const blockMs = options.blockMs ?? 0;
  const times = fns.map(() => [] as number[]);
  const start = nowMs();
  for (let round = 0; ; round++) {
    for (const [i, fn] of fns.entries()) {
      const blockStart = nowMs();
      do {
        const t0 = nowMs();
        await fn();
        times[i]!.push(nowMs() - t0);
      } while (nowMs() - blockStart < blockMs);
    }
    if (nowMs() - start >= options.minMs && round + 1 >= (options.minRounds ?? 3)) return times;
  }
}
