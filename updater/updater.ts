import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { type FeatureStore, type StateUpdate, type UserState, WriteOutcomes } from '../featurestore/feature-store.js';
import type { SourcedEvent, WindowEvent } from '../events/window-event.js';
import { type AdvanceInput, type Advanced, type Embedder, type SequenceAdvancer, WindowedAdvancer } from './advance.js';
import { type MergePlan, planMerge } from './merge-plan.js';

export type { Embedder } from './advance.js';

export interface UpdaterOptions {
  store: FeatureStore;
  /** Windowed models: the encoder of whole windows (ignored when `advancer` is given). */
  embedder?: Embedder;
  /** Windowed models: events kept per user (the model's max sequence length). */
  maxSeqLen?: number;
  /** How a user's state advances (updater/advance.ts); default: a WindowedAdvancer of embedder + maxSeqLen. */
  advancer?: SequenceAdvancer;
  /** Re-reads after a lost compare-and-set before giving up on the batch. @default 8 */
  maxConflictRetries?: number;
  /** Clock for `updatedMs`. @default Date.now */
  now?: () => number;
  /**
   * What `updatedMs` is stamped with, per written window, instead of the `now` clock. The backfill
   * uses the window's newest event time so that re-runs and resumed runs write identical bytes.
   */
  updatedMsOf?: (window: readonly WindowEvent[]) => number;
}

/** Why a user's fresh events were refused; each is a dead-letter reason too. */
export const UpdateRejections = {
  /** The model gave NaN or infinity for this user. */
  MODEL_OUTPUT_NOT_FINITE: 'MODEL_OUTPUT_NOT_FINITE',
  /** Inference failed for this user alone, for a reason retrying cannot fix (the detail names it). */
  UPDATE_FAILED: 'UPDATE_FAILED',
} as const;
export type UpdateRejection = (typeof UpdateRejections)[keyof typeof UpdateRejections];

export interface RejectedUser {
  userId: string;
  /** The events refused: only those not applied before (redelivered duplicates are not refused again). */
  events: SourcedEvent[];
  reason: UpdateRejection;
  detail: string;
}

export interface UpdateSummary {
  users: number;
  applied: number;
  duplicates: number;
  writes: number;
  conflicts: number;
  /** Users whose update was refused (the model returned NaN, or failed for them alone); their fresh events were not applied. */
  rejected: RejectedUser[];
  /** For each written user, the newest event time applied (for freshness metrics). */
  newestEventMs: number;
  /** For each written user, ms from the newest event applied to the write (event time → written). */
  freshnessMs: number[];
  /** Users whose stored state could not be decoded and was started over (see UserState.corrupt). */
  corruptStates: string[];
  /** Events dropped because their user was erased after them (an event time at or before the tombstone's). */
  tombstoneHits: number;
}

/**
 * Applies events to users' state: read state, drop events already applied (per topic-partition
 * offset), merge into the window, one inference per user, compare-and-set write. Shared by the
 * stream consumers and the backfill, so both have the same effectively-once semantics.
 */
export class Updater {
  readonly #store: FeatureStore;
  readonly #advancer: SequenceAdvancer;
  readonly #maxConflictRetries: number;
  readonly #now: () => number;
  readonly #updatedMsOf: ((window: readonly WindowEvent[]) => number) | undefined;

  constructor(options: UpdaterOptions) {
    if (options.advancer) {
      this.#advancer = options.advancer;
    } else {
      const { embedder, maxSeqLen } = options;
      if (!embedder) throw new TasteError(ErrorCodes.CONFIG_INVALID, 'the updater needs an advancer, or an embedder and maxSeqLen');
      if (maxSeqLen === undefined || !Number.isInteger(maxSeqLen) || maxSeqLen < 1) {
        throw new TasteError(ErrorCodes.CONFIG_INVALID, `maxSeqLen must be a positive integer, got ${maxSeqLen}`);
      }
      this.#advancer = new WindowedAdvancer(embedder, maxSeqLen);
    }
    this.#store = options.store;
    this.#maxConflictRetries = options.maxConflictRetries ?? 8;
    this.#now = options.now ?? Date.now;
    this.#updatedMsOf = options.updatedMsOf;
  }

  async apply(events: readonly SourcedEvent[]): Promise<UpdateSummary> {
    const byUser = new Map<string, SourcedEvent[]>();
    for (const event of events) {
      const list = byUser.get(event.userId);
      if (list) list.push(event);
      else byUser.set(event.userId, [event]);
    }
    const summary: UpdateSummary = {
      users: byUser.size,
      applied: 0,
      duplicates: 0,
      writes: 0,
      conflicts: 0,
      rejected: [],
      newestEventMs: 0,
      freshnessMs: [],
      corruptStates: [],
      tombstoneHits: 0,
    };
    let pending = [...byUser.keys()];
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > this.#maxConflictRetries) {
        throw new TasteError(
          ErrorCodes.STORE_CONFLICT,
          `${pending.length} users still conflicted after ${this.#maxConflictRetries} retries (another writer keeps winning)`,
          { canRetry: true },
        );
      }
      pending = await this.#attempt(pending, byUser, summary);
    }
    return summary;
  }

  /**
   * Advances every user, or, when that fails for a reason retrying cannot fix, finds the users it
   * fails for by halving the batch, so one user's bad input costs that user's events, not the
   * partition's progress. A failure that every user of a batch shares (a broken model, a closed
   * pool) is not any user's fault: it is thrown, and the batch is retried as a whole.
   */
  async #advanceIsolating(inputs: AdvanceInput[]): Promise<(Advanced | Error)[]> {
    const results = await this.#advanceOrSplit(inputs);
    const shared = inputs.length > 1 && results.every((result) => result instanceof Error);
    if (shared) throw results[0];
    return results;
  }

  /** One run; if it fails for a user-dependent reason, each half is run on its own, down to single users. */
  async #advanceOrSplit(inputs: AdvanceInput[]): Promise<(Advanced | Error)[]> {
    try {
      return await this.#advancer.advance(inputs);
    } catch (error) {
      if (!isolatable(error)) throw error;
      if (inputs.length === 1) return [error as Error];
      const middle = Math.ceil(inputs.length / 2);
      return [...(await this.#advanceOrSplit(inputs.slice(0, middle))), ...(await this.#advanceOrSplit(inputs.slice(middle)))];
    }
  }

  /** One read-compute-write round; returns the users whose write lost a race. */
  async #attempt(userIds: string[], byUser: Map<string, SourcedEvent[]>, summary: UpdateSummary): Promise<string[]> {
    const states = await this.#store.loadStates(userIds);
    const planned = this.#plan(userIds, byUser, states, summary);
    if (planned.length === 0) return [];
    const writable = await this.#advance(planned, summary);
    return this.#write(writable, summary);
  }

  /**
   * Each user's merge plan (dedup by offset), and the update it will write; users with nothing new
   * are counted as duplicates and left out. Events at or before an erased user's tombstone are
   * dropped first, whatever their offset: they belong to the erased profile.
   */
  #plan(userIds: readonly string[], byUser: Map<string, SourcedEvent[]>, states: Map<string, UserState>, summary: UpdateSummary): PlannedUser[] {
    const planned: PlannedUser[] = [];
    for (const userId of userIds) {
      const state = states.get(userId)!;
      if (state.corrupt && !summary.corruptStates.includes(userId)) summary.corruptStates.push(userId);
      const incoming = byUser.get(userId)!;
      const erasedUpTo = state.tombstone?.atMs;
      const live = erasedUpTo === undefined ? incoming : incoming.filter(({ event }) => event.eventTimeMs > erasedUpTo);
      // The dropped events leave the batch, so a retry after a lost race does not count them again.
      if (live.length < incoming.length) {
        summary.tombstoneHits += incoming.length - live.length;
        byUser.set(userId, live);
      }
      const plan = planMerge(state.highWater, live);
      if (plan.fresh.length === 0) {
        summary.duplicates += plan.duplicates;
        continue;
      }
      const update: StateUpdate = {
        userId,
        expectedVersion: state.version,
        ...(state.corruptVersion ? { replacesCorruptVersion: state.corruptVersion } : {}),
        ...(state.tombstone ? { expectedTombstone: state.tombstone.raw } : {}),
        window: [],
        highWater: plan.highWater,
        embedding: new Float32Array(0),
        updatedMs: 0,
        appliedTotal: state.appliedTotal + plan.fresh.length,
      };
      planned.push({ update, state, plan });
    }
    return planned;
  }

  /** Advances the planned users and fills in their window, embedding and checkpoint; refused users go to `summary.rejected`. */
  async #advance(planned: PlannedUser[], summary: UpdateSummary): Promise<PlannedUser[]> {
    const advanced = await this.#advanceIsolating(planned.map(({ state, plan }) => ({ state, fresh: plan.fresh.map(({ event }) => event) })));
    const writable: PlannedUser[] = [];
    planned.forEach((user, index) => {
      const judged = judge(advanced[index]);
      if (!judged.ok) {
        summary.rejected.push({ userId: user.update.userId, events: user.plan.fresh, reason: judged.reason, detail: judged.detail });
        // Rejected users are done for this batch: their duplicates count as such.
        summary.duplicates += user.plan.duplicates;
        return;
      }
      const { window, embedding, checkpoint } = judged;
      user.update.window = window;
      user.update.embedding = embedding;
      if (checkpoint) user.update.checkpoint = checkpoint;
      writable.push(user);
    });
    return writable;
  }

  /** Stamps and writes the updates under compare-and-set; returns the users whose write lost a race. */
  async #write(writable: PlannedUser[], summary: UpdateSummary): Promise<string[]> {
    const updatedMs = this.#now();
    for (const { update } of writable) update.updatedMs = this.#updatedMsOf?.(update.window) ?? updatedMs;
    const outcomes = await this.#store.writeStates(writable.map(({ update }) => update));
    const conflicted: string[] = [];
    outcomes.forEach((outcome, index) => {
      const { update, plan } = writable[index]!;
      if (outcome === WriteOutcomes.CONFLICT) {
        summary.conflicts++;
        conflicted.push(update.userId);
        return;
      }
      summary.writes++;
      summary.applied += plan.fresh.length;
      summary.duplicates += plan.duplicates;
      summary.newestEventMs = Math.max(summary.newestEventMs, plan.newestFreshMs);
      summary.freshnessMs.push(update.updatedMs - plan.newestFreshMs);
    });
    return conflicted;
  }
}

/** One user in a round: the state read, the merge plan, and the update being built for the write. */
interface PlannedUser {
  update: StateUpdate;
  state: UserState;
  plan: MergePlan<SourcedEvent>;
}

type Judged = ({ ok: true } & Advanced & { embedding: Float32Array }) | { ok: false; reason: UpdateRejection; detail: string };

/** Whether an advanced user can be written: not when inference failed for them alone, or gave NaN or infinity. */
function judge(result: Advanced | Error | undefined): Judged {
  if (result instanceof Error) return { ok: false, reason: UpdateRejections.UPDATE_FAILED, detail: describeFailure(result) };
  const embedding = result?.embedding;
  if (!result || !embedding || !embedding.every(Number.isFinite) || !(result.checkpoint?.state.every(Number.isFinite) ?? true)) {
    return { ok: false, reason: UpdateRejections.MODEL_OUTPUT_NOT_FINITE, detail: 'the model output NaN or infinity for this user' };
  }
  return { ok: true, ...result, embedding };
}

/** Input-dependent failures: the ones a user's own events or state can cause. */
function isolatable(error: unknown): boolean {
  return error instanceof TasteError && !error.canRetry && error.code === ErrorCodes.INFERENCE_FAILED;
}

function describeFailure(error: Error): string {
  return `${error instanceof TasteError ? `${error.code}: ` : ''}${describeError(error)}`;
}
