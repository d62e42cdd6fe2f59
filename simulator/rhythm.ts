// When sessions happen: a Poisson process per user, thinned by a daily rhythm in the user's local
// time (quiet nights, a morning commute, an evening peak).
import type { Random } from './random.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Relative chance of starting a session, by local hour 0..23 (peak = 1). */
const hourly = [
  0.25, 0.15, 0.1, 0.07, 0.07, 0.12, 0.35, 0.75, 0.85, 0.6, 0.5, 0.55,
  0.65, 0.6, 0.5, 0.55, 0.7, 0.85, 0.95, 1.0, 1.0, 0.9, 0.7, 0.45,
] as const;
const meanHourly = hourly.reduce((a, b) => a + b, 0) / hourly.length;

/** No new session sooner than this after the previous one ended. */
export const minSessionGapMs = 20 * 60_000;

export function localHour(timeMs: number, utcOffsetHours: number): number {
  const local = timeMs + utcOffsetHours * HOUR_MS;
  return Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS);
}

/**
 * The start of the next session after `afterMs`, for a user with `sessionsPerDay` on average.
 * Returns Infinity for a user who never listens.
 */
export function nextSessionStart(rng: Random, afterMs: number, sessionsPerDay: number, utcOffsetHours: number): number {
  if (!(sessionsPerDay > 0)) return Number.POSITIVE_INFINITY;
  // Candidates at the peak rate, kept with probability hourly/peak: the mean rate stays sessionsPerDay.
  const meanGapMs = (DAY_MS / sessionsPerDay) * meanHourly;
  let t = afterMs;
  for (let i = 0; i < 10_000; i++) {
    t += rng.exponential(meanGapMs);
    if (rng.float() < hourly[localHour(t, utcOffsetHours)]!) return Math.floor(t);
  }
  return Math.floor(t);
}
