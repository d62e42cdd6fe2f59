import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import type { RedisClient } from '../featurestore/feature-store.js';
import { addQualitySamples, type QualityTotals } from '../featurestore/live-quality.js';
import { EventKinds, type SourcedEvent, type WindowEvent } from '../events/window-event.js';
import { compareWindowEvents, UNKNOWN_ITEM_ID } from '../model/features.js';
import type { ItemScorer } from '../model/item-scorer.js';
import { rankAmongAll } from '../model/ranking.js';

/**
 * Live quality (docs/rollout.md, "Live quality"): a sampled share of incoming plays is scored,
 * before it is applied, against the embedding each model version holds for its user. It is the
 * next-event task of the offline evaluation of the simulator (training/taste_training/evaluate.py:
 * plays of kind PLAY or COMPLETED with a known item are the targets, ranked among all items, the
 * user's history not masked), on live traffic. The updater picks the plays and reads the
 * embeddings; this class decides the sample, ranks, and adds the totals to Redis.
 */
export interface LiveQualityOptions {
  /** Share of events in the sample, 0..1. */
  sampleRate: number;
  /** The item table of every model version scored: the primary's and each shadow's. */
  itemTables: ReadonlyMap<string, ItemScorer>;
  /** Where the totals go (featurestore/live-quality.ts), under the key prefix of the job. */
  redis: RedisClient;
  keyPrefix: string;
  /** Clock of the hour buckets. @default Date.now */
  now?: () => number;
  /** Told when totals could not be added: they are lost, the stream is not held back. */
  onRecordFailed?: (modelVersion: string, error: Error) => void;
}

/** One model version's samples of one step. */
export interface VersionQuality {
  modelVersion: string;
  totals: QualityTotals;
}

/** Kinds the offline evaluation takes as targets: a play that was not skipped. */
const TARGET_KINDS: ReadonlySet<number> = new Set([EventKinds.PLAY, EventKinds.COMPLETED]);

export class LiveQuality {
  readonly sampleRate: number;
  readonly #threshold: number;
  readonly #tables: ReadonlyMap<string, ItemScorer>;
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #onRecordFailed: ((modelVersion: string, error: Error) => void) | undefined;

  constructor(options: LiveQualityOptions) {
    const { sampleRate } = options;
    if (!(sampleRate >= 0 && sampleRate <= 1)) throw new TasteError(ErrorCodes.CONFIG_INVALID, `the live quality sample rate must be in 0..1, got ${sampleRate}`);
    this.sampleRate = sampleRate;
    this.#threshold = sampleRate * 2 ** 32;
    this.#tables = options.itemTables;
    this.#redis = options.redis;
    this.#prefix = options.keyPrefix;
    this.#now = options.now ?? Date.now;
    this.#onRecordFailed = options.onRecordFailed;
  }

  /**
   * Whether an event is a target in the sample. Decided by a hash of its Kafka coordinates, so
   * every version scores the same plays (their qualities compare pairwise) and a redelivery
   * decides as the first delivery did.
   */
  isSampled(sourced: SourcedEvent): boolean {
    const { event } = sourced;
    if (!TARGET_KINDS.has(event.kind) || this.#threshold === 0) return false;
    return coordinateHash(sourced.topic, event.partition, event.offset) < this.#threshold;
  }

  /** The 0-based rank of `itemId` among all the version's items under `embedding`; undefined when it cannot be ranked (unknown item, another dimension). */
  rank(modelVersion: string, embedding: Float32Array, itemId: number): number | undefined {
    const table = this.#tables.get(modelVersion);
    if (!table || itemId <= UNKNOWN_ITEM_ID || itemId >= table.rows || embedding.length !== table.dim) return undefined;
    return rankAmongAll(table.scoreAll(embedding), itemId);
  }

  /** Adds each version's totals of a step to its hour bucket; a failure is reported, never thrown. */
  async record(step: readonly VersionQuality[]): Promise<void> {
    const nowMs = this.#now();
    await Promise.all(
      step
        .filter(({ totals }) => totals.samples > 0)
        .map(({ modelVersion, totals }) =>
          addQualitySamples(this.#redis, this.#prefix, modelVersion, totals, nowMs).catch((error: unknown) =>
            this.#onRecordFailed?.(modelVersion, error instanceof Error ? error : new Error(describeError(error))),
          ),
        ),
    );
  }
}

/** Adds one ranked play to some totals: a hit when in the top 10, NDCG@10 1/log2(rank + 2), reciprocal rank 1/(rank + 1). */
export function addRank(totals: QualityTotals, rank: number): void {
  totals.samples++;
  if (rank < 10) {
    totals.hits10++;
    totals.ndcg10Sum += 1 / Math.log2(rank + 2);
  }
  totals.reciprocalRankSum += 1 / (rank + 1);
}

/**
 * Whether `event` can be scored against the embedding of `applied`, the events a state already
 * holds: only when it orders after all of them, so that embedding is the one just before it.
 * A late event is not scored: the embedding already knows what came after it.
 */
export function followsApplied(event: WindowEvent, appliedWindow: readonly WindowEvent[], checkpointEventMs: number | undefined): boolean {
  const newest = appliedWindow[appliedWindow.length - 1];
  if (newest && compareWindowEvents(newest, event) >= 0) return false;
  return checkpointEventMs === undefined || checkpointEventMs <= event.eventTimeMs;
}

/** FNV-1a (32 bits) of topic, partition and offset: stable across processes and versions. */
function coordinateHash(topic: string, partition: number, offset: number): number {
  let hash = 0x811c9dc5;
  const text = `${topic}\u0000${partition}\u0000${offset}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
