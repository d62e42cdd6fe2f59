// The simulated world: a catalogue, a population of users, and their merged event stream.
// Each user's events come from the user's own random stream, one session at a time; a heap keyed
// by each user's next event time merges them into global time order. Memory is O(users + events
// of the sessions in progress), so a stream of any length runs in bounded memory.
import { createCatalogue, type Catalogue, type CatalogueOptions } from './catalogue.js';
import { ListeningBehaviour } from './behaviour.js';
import { checkInteger, checkNumber, checkSeed, SimulatorError, SimulatorErrorCodes } from './errors.js';
import type { Random } from './random.js';
import { minSessionGapMs, nextSessionStart } from './rhythm.js';
import type { EventRecord } from '../events/event-record.js';
import { TimeHeap } from './time-heap.js';
import {
  createUsers,
  defaultUserPopulationOptions,
  type ResolvedUserPopulationOptions,
  type SimUser,
  type UserPopulationOptions,
} from './users.js';

const DAY_MS = 86_400_000;

export interface SimulationOptions extends UserPopulationOptions {
  /** A catalogue, or options to build one (its seed defaults to `seed`). @default {} */
  catalogue?: Catalogue | CatalogueOptions;
  /**
   * Start of the simulated span, ms since the Unix epoch. Fixed by default so that a seed alone
   * reproduces a data set; pass `Date.now()` for "live" data. @default Date.UTC(2026, 0, 5)
   */
  startTimeMs?: number;
  /** Length of the simulated span in ms; `Infinity` for an endless stream. @default 7 days */
  durationMs?: number;
  /** Chance that a session step is a search instead of a play (sessions may also start with one). @default 0.04 */
  searchRate?: number;
  /** Softmax temperature over taste affinity when choosing the next item. @default 0.15 */
  temperature?: number;
}

export const defaultSimulationOptions = {
  ...defaultUserPopulationOptions,
  startTimeMs: Date.UTC(2026, 0, 5),
  durationMs: 7 * DAY_MS,
  searchRate: 0.04,
  temperature: 0.15,
} as const;

export interface ResolvedSimulationOptions extends ResolvedUserPopulationOptions {
  readonly startTimeMs: number;
  readonly durationMs: number;
  readonly searchRate: number;
  readonly temperature: number;
}

export function resolveSimulationOptions(options: SimulationOptions = {}): ResolvedSimulationOptions {
  const { catalogue: _catalogue, ...rest } = options;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const resolved: ResolvedSimulationOptions = { ...defaultSimulationOptions, ...defined };
  checkSeed('seed', resolved.seed);
  checkInteger('users', resolved.users, 0, 100_000_000);
  checkNumber('sessionsPerDay', resolved.sessionsPerDay, 0, 1000);
  checkNumber('playsPerSession', resolved.playsPerSession, 1, 1000);
  checkNumber('activityShape', resolved.activityShape, 1.01, 100);
  checkNumber('maxActivity', resolved.maxActivity, 1, 1e6);
  checkInteger('startTimeMs', resolved.startTimeMs, 0, 8.64e15);
  checkNumber('durationMs', resolved.durationMs, 0);
  checkNumber('searchRate', resolved.searchRate, 0, 0.9);
  checkNumber('temperature', resolved.temperature, 0.001, 100);
  if (typeof resolved.userIdPrefix !== 'string') {
    throw new SimulatorError(SimulatorErrorCodes.invalidOption, `option userIdPrefix must be a string (got ${String(resolved.userIdPrefix)})`);
  }
  return resolved;
}

export class World {
  readonly options: ResolvedSimulationOptions;
  readonly catalogue: Catalogue;
  /** The users with their true latent tastes (what a model's embeddings are evaluated against). */
  readonly users: readonly SimUser[];

  constructor(options: SimulationOptions = {}) {
    this.options = resolveSimulationOptions(options);
    this.catalogue = isCatalogue(options.catalogue)
      ? options.catalogue
      : createCatalogue({ ...options.catalogue, seed: options.catalogue?.seed ?? this.options.seed });
    this.users = createUsers(this.catalogue, this.options);
  }

  /**
   * All events in [startTimeMs, startTimeMs + durationMs), in event-time order (ties: lower user
   * index first). Each call replays the same stream from the start.
   */
  *events(): Generator<EventRecord, void, undefined> {
    const { startTimeMs, durationMs, searchRate, temperature } = this.options;
    const endMs = startTimeMs + durationMs;
    const behaviour = new ListeningBehaviour(this.catalogue, { searchRate, temperature });
    const states = this.users.map((user) => behaviour.newUserState(user));
    const count = states.length;
    const nextTime = new Float64Array(count); // next event, or next session start when no session is open
    const sessionEnd = new Float64Array(count);
    const sessions: Array<EventRecord[] | undefined> = new Array<EventRecord[] | undefined>(count);
    const cursor = new Int32Array(count);
    const heap = new TimeHeap(count, nextTime);

    for (let u = 0; u < count; u++) {
      const { user, rng } = states[u]!;
      nextTime[u] = nextSessionStart(rng, startTimeMs, user.sessionsPerDay, user.utcOffsetHours);
      if (nextTime[u]! < endMs) heap.push(u);
    }

    while (heap.size > 0) {
      const u = heap.peek();
      const state = states[u]!;
      let session = sessions[u];
      if (session === undefined) {
        // A session is due: generate it now, then wait for its first event's turn in the merge.
        session = [];
        sessionEnd[u] = behaviour.session(state, nextTime[u]!, endMs, session);
        if (session.length === 0) {
          this.#scheduleNextSession(state.rng, u, sessionEnd[u]!, nextTime, endMs, heap);
          continue;
        }
        sessions[u] = session;
        cursor[u] = 0;
        nextTime[u] = session[0]!.event.eventTimeMs;
        heap.topIncreased();
        continue;
      }

      const position = cursor[u]!;
      const event = session[position]!;
      if (position + 1 < session.length) {
        cursor[u] = position + 1;
        nextTime[u] = session[position + 1]!.event.eventTimeMs;
        heap.topIncreased();
      } else {
        sessions[u] = undefined; // let the finished session go
        this.#scheduleNextSession(state.rng, u, sessionEnd[u]!, nextTime, endMs, heap);
      }
      yield event;
    }
  }

  #scheduleNextSession(
    rng: Random,
    u: number,
    afterMs: number,
    nextTime: Float64Array,
    endMs: number,
    heap: TimeHeap,
  ): void {
    const user = this.users[u]!;
    nextTime[u] = nextSessionStart(rng, afterMs + minSessionGapMs, user.sessionsPerDay, user.utcOffsetHours);
    if (nextTime[u]! < endMs) heap.topIncreased();
    else heap.pop();
  }
}

export function createWorld(options: SimulationOptions = {}): World {
  return new World(options);
}

/**
 * The event stream of a world (or of the world built from `options`), in time order.
 * Lazy: pull as many events as you need; memory stays bounded however many you pull.
 */
export function simulateEvents(source: SimulationOptions | World = {}): Generator<EventRecord, void, undefined> {
  return (source instanceof World ? source : new World(source)).events();
}

function isCatalogue(value: Catalogue | CatalogueOptions | undefined): value is Catalogue {
  return value !== undefined && Array.isArray((value as Catalogue).items);
}
