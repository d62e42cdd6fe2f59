// Live mode for the demo: the same simulated world, played out against the wall clock. Simulated
// time runs `timeScale` times faster than real time, and each event is stamped with the moment it
// is yielded, so downstream sees events "happening now".
import { setTimeout as sleepFor } from 'node:timers/promises';
import { checkNumber } from './errors.js';
import type { EventRecord } from '../events/event-record.js';
import { World, type SimulationOptions } from './world.js';

export interface RealtimeOptions extends Omit<SimulationOptions, 'startTimeMs' | 'durationMs'> {
  /** Simulated ms per wall-clock ms: 60 plays an hour of listening in a minute. @default 60 */
  timeScale?: number;
  /** Simulated span to play out; Infinity for an endless stream. @default Infinity */
  durationMs?: number;
  /** Wall clock. @default Date.now */
  clock?: () => number;
  /** Waits `ms` (tests pass a fake). @default node:timers/promises setTimeout */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Ends the stream (the generator returns; no error). */
  signal?: AbortSignal;
}

export const defaultRealtimeOptions = { timeScale: 60, durationMs: Number.POSITIVE_INFINITY } as const;

/**
 * Yields the world's events paced by the wall clock, `eventTimeMs` restamped to the wall-clock
 * time at which each is yielded (never decreasing). Pull-based: a slow consumer makes the stream
 * fall behind (events then come out back to back), never buffer.
 */
export async function* streamRealtimeEvents(options: RealtimeOptions = {}): AsyncGenerator<EventRecord, void, undefined> {
  const { timeScale = defaultRealtimeOptions.timeScale, clock = Date.now, sleep = defaultSleep, signal, ...rest } = options;
  checkNumber('timeScale', timeScale, 1e-6, 1e9);
  const startMs = Math.floor(clock());
  const world = new World({ durationMs: defaultRealtimeOptions.durationMs, ...stripUndefined(rest), startTimeMs: startMs });
  let lastStamp = startMs;
  for (const simulated of world.events()) {
    if (signal?.aborted) return;
    const dueMs = startMs + (simulated.event.eventTimeMs - startMs) / timeScale;
    const waitMs = dueMs - clock();
    if (waitMs >= 1) {
      try {
        await sleep(waitMs, signal);
      } catch (error) {
        if (signal?.aborted) return;
        throw error;
      }
      if (signal?.aborted) return;
    }
    lastStamp = Math.max(lastStamp, Math.floor(clock()));
    yield simulated.kind === 'play'
      ? { kind: 'play', event: { ...simulated.event, eventTimeMs: lastStamp } }
      : { kind: 'search', event: { ...simulated.event, eventTimeMs: lastStamp } };
  }
}

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleepFor(ms, undefined, signal === undefined ? undefined : { signal });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
