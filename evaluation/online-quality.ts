// Live quality against offline (issue 14, docs/rollout.md): after the histories of an evaluation
// set are stored, each user's held-out item is played through the stream. A consumer at
// --quality-sample-rate 1 ranks every one of those plays against the embedding just before it, which
// is the embedding offline evaluation ranks with, so the online totals must give the offline metrics.
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { TasteEvent } from '../consumers/event-producer.js';
import { qualityRates, type QualityTotals } from '../featurestore/live-quality.js';
import { readEventsJsonl } from '../events/jsonl.js';
import type { ItemVocabulary } from '../model/model-bundle.js';
import type { EvaluationSet } from './evaluation-set.js';
import type { RankingMetrics } from './ranking.js';

/** How long after a user's newest replayed event the held-out play is dated. */
const TARGET_DELAY_MS = 1000;

/**
 * Each user's held-out item as a completed play, one second after the user's newest replayed
 * event, in the set's case order. The other fields come from the user's last replayed play, so
 * the event is as valid as the history; a user with no play in their history cannot be given one.
 */
export async function heldOutPlays(set: EvaluationSet, vocabulary: ItemVocabulary): Promise<TasteEvent[]> {
  const newestMs = new Map<string, number>();
  const lastPlay = new Map<string, Extract<TasteEvent, { kind: 'play' }>['event']>();
  for await (const { event } of readEventsJsonl(set.eventsPath)) {
    const userId = event.event.userId ?? '';
    const timeMs = Number(event.event.eventTimeMs ?? 0);
    newestMs.set(userId, Math.max(newestMs.get(userId) ?? Number.NEGATIVE_INFINITY, timeMs));
    if (event.kind === 'play') lastPlay.set(userId, event.event);
  }
  return set.cases.map((c) => {
    const template = lastPlay.get(c.userId);
    const itemUri = vocabulary.uriOf(c.target);
    if (!template || itemUri === undefined) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `${set.directory}: user ${c.userId} ${template ? `has target id ${c.target}, not in the model's items` : 'has no play in the replayed events'}: cannot play the held-out item`);
    }
    const durationMs = Number(template.itemDurationMs ?? 0) > 0 ? Number(template.itemDurationMs) : 180_000;
    return {
      kind: 'play',
      event: { ...template, itemUri, eventTimeMs: newestMs.get(c.userId)! + TARGET_DELAY_MS, msPlayed: durationMs, itemDurationMs: durationMs, endReason: 'END_REASON_COMPLETED' },
    };
  });
}

export interface OnlineComparison {
  users: number;
  /** The plays scored between the two readings of the totals. */
  samples: number;
  online: { 'HR@10': number; 'NDCG@10': number; MRR: number };
  offline: { 'HR@10': number; 'NDCG@10': number; MRR: number };
  maxMetricDiff: number;
  tolerance: number;
  passed: boolean;
  reasons: string[];
}

/** The totals added between `before` and `after`. */
export function totalsBetween(before: QualityTotals, after: QualityTotals): QualityTotals {
  return {
    samples: after.samples - before.samples,
    hits10: after.hits10 - before.hits10,
    ndcg10Sum: after.ndcg10Sum - before.ndcg10Sum,
    reciprocalRankSum: after.reciprocalRankSum - before.reciprocalRankSum,
  };
}

/**
 * Online against offline. Every user's play must be scored once (no sampling error at rate 1), and
 * each metric may differ by what `maxRankChanges` users' ranks moving by float noise explain.
 */
export function compareOnlineToOffline(totals: QualityTotals, offline: RankingMetrics, users: number, maxRankChanges: number): OnlineComparison {
  const rates = qualityRates(totals);
  const online = { 'HR@10': rates?.hitRate10 ?? Number.NaN, 'NDCG@10': rates?.ndcg10 ?? Number.NaN, MRR: rates?.mrr ?? Number.NaN };
  const expected = { 'HR@10': offline['HR@10'] ?? Number.NaN, 'NDCG@10': offline['NDCG@10'] ?? Number.NaN, MRR: offline['MRR'] ?? Number.NaN };
  const names = ['HR@10', 'NDCG@10', 'MRR'] as const;
  const maxMetricDiff = Math.max(...names.map((name) => Math.abs(online[name] - expected[name])));
  const tolerance = maxRankChanges / Math.max(1, users);
  const reasons: string[] = [];
  if (totals.samples !== users) {
    reasons.push(`${totals.samples} held-out plays were scored, not ${users}: is taste consume running with --quality-sample-rate 1?`);
  }
  if (!(maxMetricDiff <= tolerance)) reasons.push(`online metrics differ from offline by up to ${maxMetricDiff.toFixed(5)} (tolerance ${tolerance.toFixed(5)})`);
  return { users, samples: totals.samples, online, offline: expected, maxMetricDiff, tolerance, passed: reasons.length === 0, reasons };
}

export function formatOnlineComparison(comparison: OnlineComparison): string {
  const names = ['HR@10', 'NDCG@10', 'MRR'] as const;
  const row = (label: string, metrics: Record<(typeof names)[number], number>) => `  ${label.padEnd(34)}${names.map((name) => metrics[name].toFixed(4).padStart(9)).join('')}`;
  return [
    `live quality of the held-out plays (${comparison.samples} of ${comparison.users} scored)`,
    `  ${''.padEnd(34)}${names.map((name) => name.padStart(9)).join('')}`,
    row('online (taste consume, sampled 100%)', comparison.online),
    row('offline (onnxruntime, Python)', comparison.offline),
    `  largest metric difference: ${comparison.maxMetricDiff.toFixed(6)} (tolerance ${comparison.tolerance.toFixed(6)})`,
    comparison.passed ? 'PASS: live quality equals the offline metrics' : `FAIL: ${comparison.reasons.join('; ')}`,
  ].join('\n');
}
