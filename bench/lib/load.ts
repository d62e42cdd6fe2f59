import { nowMs, sleep } from './stats.js';

export interface LoadResult {
  calls: number;
  errors: number;
  ms: number;
  qps: number;
  latenciesMs: number[];
  /** Open loop only: calls not issued because `maxInFlight` were outstanding (overload). */
  skipped: number;
}

/** `concurrency` loops each awaiting `call` back to back for `durationMs` (closed loop: max QPS). */
export async function closedLoop(call: (i: number) => Promise<unknown>, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  let next = 0;
  const start = nowMs();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (nowMs() < end) {
        const t0 = nowMs();
        try {
          await call(next++);
          latenciesMs.push(nowMs() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const ms = nowMs() - start;
  return { calls: latenciesMs.length, errors, ms, qps: (latenciesMs.length * 1000) / ms, latenciesMs, skipped: 0 };
}

/**
 * Calls issued at a fixed rate whatever the answers do (open loop); each latency counts from the
 * moment the call was due, so a stall shows in the tail instead of hiding (no coordinated omission).
 */
export async function openLoop(call: (i: number) => Promise<unknown>, ratePerS: number, durationMs: number, maxInFlight = 4096): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const pending = new Set<Promise<void>>();
  let errors = 0;
  let issued = 0;
  let skipped = 0;
  const start = nowMs();
  for (;;) {
    const elapsed = nowMs() - start;
    if (elapsed >= durationMs) break;
    const due = Math.floor((elapsed * ratePerS) / 1000) - issued - skipped;
    for (let k = 0; k < due; k++) {
      const i = issued + skipped;
      const dueAt = start + (i * 1000) / ratePerS;
      if (pending.size >= maxInFlight) {
        skipped++;
        continue;
      }
      issued++;
      const p: Promise<void> = call(i).then(
        () => void latenciesMs.push(nowMs() - dueAt),
        () => void errors++,
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await sleep(1);
  }
  await Promise.all(pending);
  const ms = nowMs() - start;
  return { calls: latenciesMs.length, errors, ms, qps: (latenciesMs.length * 1000) / ms, latenciesMs, skipped };
}
