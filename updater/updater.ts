import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { withRetry } from '../common/retry.js';
import { type EmbeddingRead, type FeatureStore, type StateUpdate, type UserState, type WriteOutcome, WriteOutcomes } from '../featurestore/feature-store.js';
import { emptyTotals } from '../featurestore/live-quality.js';
import { compareWindowEvents } from '../model/features.js';
import type { SourcedEvent, WindowEvent } from '../events/window-event.js';
import { type AdvanceInput, type Advanced, type Embedder, type SequenceAdvancer, WindowedAdvancer } from './advance.js';
import { addRank, followsApplied, type LiveQuality, type VersionQuality } from './live-quality.js';
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
  /**
   * Shadow models, advanced from the same events beside the primary (docs/rollout.md). A user's
   * writes in every version go in one atomic step. Their events come from
   * SourcedEvent.shadowEvents, in this order. @default none
   */
  shadows?: readonly ShadowModel[];
  /** Tries of a shadow's inference on a step before the shadow is suspended. @default 3 */
  shadowAttempts?: number;
  /**
   * Live quality (updater/live-quality.ts): the sampled plays are ranked, before they are applied,
   * against the embedding every running version holds, and the totals are added to Redis before
   * `apply` returns. @default none
   */
  liveQuality?: LiveQuality;
}

/** A model advanced beside the primary, whose failures never hold the primary back. */
export interface ShadowModel {
  store: FeatureStore;
  advancer: SequenceAdvancer;
}

/** What a step did for one shadow model. */
export interface ShadowSummary {
  modelVersion: string;
  /** Events applied to this shadow's states. */
  applied: number;
  writes: number;
  /** Events this shadow's model refused for their user alone (NaN, or a failure of that user): not applied in this version. */
  rejectedEvents: number;
  /** Why the shadow was suspended, on the step it happened; from then on it is neither read nor written. */
  suspendedNow?: string;
  /** False once suspended (for the rest of this updater's life). */
  active: boolean;
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
  /** One per shadow model, in the order given (empty without shadows). The counts above are the primary's. */
  shadows: ShadowSummary[];
  /** Live quality of this step: one per version scored, the primary first (empty without live quality, or when no play was sampled). */
  quality: VersionQuality[];
}

/**
 * Applies events to users' state: read state, drop events already applied (per topic-partition
 * offset), merge into the window, one inference per user, compare-and-set write. Shared by the
 * stream consumers and the backfill, so both have the same effectively-once semantics.
 *
 * With shadow models, every model version is a lane with its own state, dedup and inference; the
 * writes of one user in all lanes go in one atomic step, so a lost race retries the user in every
 * lane and no version gets ahead of another. A shadow whose inference fails for the whole step
 * (after its retries) is suspended: the primary flows on, the shadow is no longer read or
 * written, and the summary says so (docs/rollout.md, "When a shadow fails").
 */
export class Updater {
  readonly #store: FeatureStore;
  readonly #primary: Lane;
  readonly #shadows: Lane[];
  readonly #maxConflictRetries: number;
  readonly #shadowAttempts: number;
  readonly #now: () => number;
  readonly #updatedMsOf: ((window: readonly WindowEvent[]) => number) | undefined;
  readonly #liveQuality: LiveQuality | undefined;

  constructor(options: UpdaterOptions) {
    let advancer: SequenceAdvancer;
    if (options.advancer) {
      advancer = options.advancer;
    } else {
      const { embedder, maxSeqLen } = options;
      if (!embedder) throw new TasteError(ErrorCodes.CONFIG_INVALID, 'the updater needs an advancer, or an embedder and maxSeqLen');
      if (maxSeqLen === undefined || !Number.isInteger(maxSeqLen) || maxSeqLen < 1) {
        throw new TasteError(ErrorCodes.CONFIG_INVALID, `maxSeqLen must be a positive integer, got ${maxSeqLen}`);
      }
      advancer = new WindowedAdvancer(embedder, maxSeqLen);
    }
    this.#store = options.store;
    this.#primary = { store: options.store, advancer, shadowIndex: undefined, suspended: undefined };
    this.#shadows = (options.shadows ?? []).map((shadow, index) => ({ store: shadow.store, advancer: shadow.advancer, shadowIndex: index, suspended: undefined }));
    const versions = [options.store, ...this.#shadows.map((lane) => lane.store)].map((store) => store.modelVersion);
    const repeated = versions.find((version, index) => versions.indexOf(version) !== index);
    if (repeated !== undefined) throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version "${repeated}" is given twice (primary and shadows must differ)`);
    this.#maxConflictRetries = options.maxConflictRetries ?? 8;
    this.#shadowAttempts = options.shadowAttempts ?? 3;
    this.#now = options.now ?? Date.now;
    this.#updatedMsOf = options.updatedMsOf;
    this.#liveQuality = options.liveQuality;
  }

  /** Each shadow's model version, and why it was suspended (undefined while it runs). */
  get shadowStatus(): { modelVersion: string; suspended: string | undefined }[] {
    return this.#shadows.map((lane) => ({ modelVersion: lane.store.modelVersion, suspended: lane.suspended }));
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
      shadows: this.#shadows.map((lane) => ({ modelVersion: lane.store.modelVersion, applied: 0, writes: 0, rejectedEvents: 0, active: lane.suspended === undefined })),
      quality: [],
    };
    // Measured on the first round only: a user retried after a lost race is not sampled twice.
    let sampled = this.#sampledPlays(byUser);
    let pending = [...byUser.keys()];
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > this.#maxConflictRetries) {
        throw new TasteError(
          ErrorCodes.STORE_CONFLICT,
          `${pending.length} users still conflicted after ${this.#maxConflictRetries} retries (another writer keeps winning)`,
          { canRetry: true },
        );
      }
      pending = await this.#attempt(pending, byUser, summary, sampled);
      sampled = new Map();
    }
    if (summary.quality.length > 0) await this.#liveQuality!.record(summary.quality);
    return summary;
  }

  /** Per user, the earliest of their events in this call when it is a sampled play: the one the stored embedding comes just before. */
  #sampledPlays(byUser: ReadonlyMap<string, readonly SourcedEvent[]>): Map<string, SourcedEvent> {
    const sampled = new Map<string, SourcedEvent>();
    const quality = this.#liveQuality;
    if (!quality || quality.sampleRate === 0) return sampled;
    for (const [userId, events] of byUser) {
      const earliest = earliestOf(events);
      if (quality.isSampled(earliest)) sampled.set(userId, earliest);
    }
    return sampled;
  }

  /**
   * Advances every user, or, when that fails for a reason retrying cannot fix, finds the users it
   * fails for by halving the batch, so one user's bad input costs that user's events, not the
   * partition's progress. A failure that every user of a batch shares (a broken model, a closed
   * pool) is not any user's fault: it is thrown, and the batch is retried as a whole.
   */
  async #advanceIsolating(advancer: SequenceAdvancer, inputs: AdvanceInput[]): Promise<(Advanced | Error)[]> {
    const results = await advanceOrSplit(advancer, inputs);
    const shared = inputs.length > 1 && results.every((result) => result instanceof Error);
    if (shared) throw results[0];
    return results;
  }

  /** One read-compute-write round over every active lane; returns the users whose write lost a race. */
  async #attempt(userIds: string[], byUser: Map<string, SourcedEvent[]>, summary: UpdateSummary, sampled: ReadonlyMap<string, SourcedEvent>): Promise<string[]> {
    const lanes = [this.#primary, ...this.#shadows.filter((lane) => lane.suspended === undefined)];
    const sampledUsers = [...sampled.keys()];
    // The sampled users' embeddings are read beside their states, before anything of this step is written.
    const [states, embeddings] = await Promise.all([
      Promise.all(lanes.map((lane) => lane.store.loadStates(userIds))),
      Promise.all(lanes.map((lane) => (sampledUsers.length === 0 ? [] : lane.store.readEmbeddingResults(sampledUsers)))),
    ]);
    this.#dropErased(userIds, byUser, states, summary);
    const planned = lanes.map((lane, index) => this.#plan(lane, userIds, byUser, states[index]!, summary));
    if (sampledUsers.length > 0) {
      lanes.forEach((lane, index) => this.#measure(lane, planned[index]!, sampled, sampledUsers, embeddings[index]!, summary));
    }
    if (planned.every((users) => users.length === 0)) return [];
    // Every lane's inference at once: each model has its own pool, so a machine with cores to spare
    // runs them side by side. A shadow never throws (it suspends itself); the primary's failure fails the step.
    const [primary, ...shadows] = await Promise.all([
      this.#advance(this.#primary, planned[0]!, summary),
      ...lanes.slice(1).map((lane, index) => this.#advanceShadow(lane, planned[index + 1]!, summary)),
    ]);
    return this.#write([...primary!, ...shadows.flat()], summary);
  }

  /**
   * Drops every event at or before its user's erasure, whatever its offset: it belongs to the
   * erased profile. The tombstone is the user's, shared by every lane; the latest any lane read wins.
   */
  #dropErased(userIds: readonly string[], byUser: Map<string, SourcedEvent[]>, states: readonly Map<string, UserState>[], summary: UpdateSummary): void {
    for (const userId of userIds) {
      let erasedUpTo: number | undefined;
      for (const laneStates of states) {
        const atMs = laneStates.get(userId)!.tombstone?.atMs;
        if (atMs !== undefined && (erasedUpTo === undefined || atMs > erasedUpTo)) erasedUpTo = atMs;
      }
      if (erasedUpTo === undefined) continue;
      const incoming = byUser.get(userId)!;
      const live = incoming.filter(({ event }) => event.eventTimeMs > erasedUpTo);
      // The dropped events leave the batch, so a retry after a lost race does not count them again.
      if (live.length < incoming.length) {
        summary.tombstoneHits += incoming.length - live.length;
        byUser.set(userId, live);
      }
    }
  }

  /**
   * Ranks each sampled play against the lane's stored embedding of its user, when that embedding is
   * the one just before the play: the play is fresh in this lane (not a redelivery), the earliest of
   * the user's fresh events, and orders after everything already applied.
   */
  #measure(lane: Lane, planned: readonly PlannedUser[], sampled: ReadonlyMap<string, SourcedEvent>, sampledUsers: readonly string[], embeddings: readonly EmbeddingRead[], summary: UpdateSummary): void {
    const totals = emptyTotals();
    const { modelVersion } = lane.store;
    const reads = new Map(sampledUsers.map((userId, index) => [userId, embeddings[index]]));
    for (const { update, state, plan } of planned) {
      const play = sampled.get(update.userId);
      const read = reads.get(update.userId);
      if (!play || read?.status !== 'found') continue;
      const earliest = earliestOf(plan.fresh);
      if (earliest.topic !== play.topic || compareWindowEvents(earliest.event, play.event) !== 0) continue;
      if (!followsApplied(earliest.event, state.window, state.checkpoint?.lastEventMs)) continue;
      const rank = this.#liveQuality!.rank(modelVersion, read.embedding.vector, earliest.event.itemId);
      if (rank !== undefined) addRank(totals, rank);
    }
    if (totals.samples > 0) summary.quality.push({ modelVersion, totals });
  }

  /** Each user's merge plan in one lane (dedup by offset), and the update it will write; users with nothing new are left out. */
  #plan(lane: Lane, userIds: readonly string[], byUser: Map<string, SourcedEvent[]>, states: Map<string, UserState>, summary: UpdateSummary): PlannedUser[] {
    const planned: PlannedUser[] = [];
    for (const userId of userIds) {
      const state = states.get(userId)!;
      if (lane.shadowIndex === undefined && state.corrupt && !summary.corruptStates.includes(userId)) summary.corruptStates.push(userId);
      const plan = planMerge(state.highWater, eventsOfLane(lane, byUser.get(userId)!));
      if (plan.fresh.length === 0) {
        if (lane.shadowIndex === undefined) summary.duplicates += plan.duplicates;
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
      planned.push({ lane, update, state, plan });
    }
    return planned;
  }

  /** Advances a lane's planned users and fills in their window, embedding and checkpoint; refused users are tallied and left out. */
  async #advance(lane: Lane, planned: PlannedUser[], summary: UpdateSummary): Promise<PlannedUser[]> {
    if (planned.length === 0) return [];
    const advanced = await this.#advanceIsolating(lane.advancer, planned.map(({ state, plan }) => ({ state, fresh: plan.fresh.map(({ event }) => event) })));
    return this.#judged(lane, planned, advanced, summary);
  }

  /**
   * A shadow lane's #advance, with its own retries; when they are spent, or the failure cannot be
   * retried, the shadow is suspended and its users are left out: the primary never waits on it again.
   */
  async #advanceShadow(lane: Lane, planned: PlannedUser[], summary: UpdateSummary): Promise<PlannedUser[]> {
    if (planned.length === 0) return [];
    const inputs = planned.map(({ state, plan }) => ({ state, fresh: plan.fresh.map(({ event }) => event) }));
    try {
      const advanced = await withRetry(() => this.#advanceIsolating(lane.advancer, inputs), { attempts: this.#shadowAttempts, initialDelayMs: 200, maxDelayMs: 2_000 });
      return this.#judged(lane, planned, advanced, summary);
    } catch (error) {
      lane.suspended = describeFailure(error as Error);
      const shadow = summary.shadows[lane.shadowIndex!]!;
      shadow.suspendedNow = lane.suspended;
      shadow.active = false;
      return [];
    }
  }

  /** Keeps the users whose result can be written; the others are refused: dead-lettered for the primary, counted for a shadow. */
  #judged(lane: Lane, planned: PlannedUser[], advanced: (Advanced | Error)[], summary: UpdateSummary): PlannedUser[] {
    const writable: PlannedUser[] = [];
    planned.forEach((user, index) => {
      const judged = judge(advanced[index]);
      if (!judged.ok) {
        if (lane.shadowIndex !== undefined) {
          summary.shadows[lane.shadowIndex]!.rejectedEvents += user.plan.fresh.length;
          return;
        }
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

  /** Stamps and writes the updates under compare-and-set, one step per user across lanes; returns the users whose write lost a race. */
  async #write(writable: PlannedUser[], summary: UpdateSummary): Promise<string[]> {
    const updatedMs = this.#now();
    for (const { update } of writable) update.updatedMs = this.#updatedMsOf?.(update.window) ?? updatedMs;
    const byUser = new Map<string, PlannedUser[]>();
    for (const user of writable) {
      const parts = byUser.get(user.update.userId);
      if (parts) parts.push(user);
      else byUser.set(user.update.userId, [user]);
    }
    const users = [...byUser.values()];
    const outcomes: WriteOutcome[] =
      this.#shadows.length === 0
        ? await this.#store.writeStates(writable.map(({ update }) => update))
        : await this.#store.writeAcrossVersions(users.map((parts) => parts.map(({ lane, update }) => ({ store: lane.store, update }))));
    const conflicted: string[] = [];
    outcomes.forEach((outcome, index) => {
      const parts = users[index]!;
      if (outcome === WriteOutcomes.CONFLICT) {
        summary.conflicts++;
        conflicted.push(parts[0]!.update.userId);
        return;
      }
      for (const { lane, update, plan } of parts) {
        if (lane.shadowIndex !== undefined) {
          const shadow = summary.shadows[lane.shadowIndex]!;
          shadow.writes++;
          shadow.applied += plan.fresh.length;
          continue;
        }
        summary.writes++;
        summary.applied += plan.fresh.length;
        summary.duplicates += plan.duplicates;
        summary.newestEventMs = Math.max(summary.newestEventMs, plan.newestFreshMs);
        summary.freshnessMs.push(update.updatedMs - plan.newestFreshMs);
      }
    });
    return conflicted;
  }
}

/** One model version's part of the updater: its store, how its states advance, and whether it runs. */
interface Lane {
  store: FeatureStore;
  advancer: SequenceAdvancer;
  /** Undefined for the primary. */
  shadowIndex: number | undefined;
  /** Why a shadow was suspended; undefined while it runs. */
  suspended: string | undefined;
}

/** A user's events as the lane's model sees them: a shadow's own features of each (SourcedEvent.shadowEvents). */
function eventsOfLane(lane: Lane, events: readonly SourcedEvent[]): readonly SourcedEvent[] {
  const index = lane.shadowIndex;
  if (index === undefined) return events;
  return events.map((sourced) => {
    const event = sourced.shadowEvents?.[index];
    if (!event) {
      throw new TasteError(ErrorCodes.INTERNAL, `an event of user ${sourced.userId} has no features for shadow ${index}: the featurizer was not given the shadows' feature spaces`);
    }
    return { userId: sourced.userId, topic: sourced.topic, event };
  });
}

/** The first of some (non-empty) events in window order. */
function earliestOf(events: readonly SourcedEvent[]): SourcedEvent {
  return events.reduce((first, next) => (compareWindowEvents(next.event, first.event) < 0 ? next : first));
}

/** One run; if it fails for a user-dependent reason, each half is run on its own, down to single users. */
async function advanceOrSplit(advancer: SequenceAdvancer, inputs: AdvanceInput[]): Promise<(Advanced | Error)[]> {
  try {
    return await advancer.advance(inputs);
  } catch (error) {
    if (!isolatable(error)) throw error;
    if (inputs.length === 1) return [error as Error];
    const middle = Math.ceil(inputs.length / 2);
    return [...(await advanceOrSplit(advancer, inputs.slice(0, middle))), ...(await advanceOrSplit(advancer, inputs.slice(middle)))];
  }
}

/** One user in a round: the state read, the merge plan, and the update being built for the write. */
interface PlannedUser {
  lane: Lane;
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
