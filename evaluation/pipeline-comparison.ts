// Served embeddings vs the offline reference: the same users ranked with the same item table must
// give the same metrics. Differences are reported per cause (missing users, short windows,
// embedding drift, rank changes), so a failure says where the pipeline diverged.
import type { ItemScorer } from '../model/item-scorer.js';
import type { EvaluationSet } from './evaluation-set.js';
import { metricsFromRanks, rankAmongAll, rankAmongSampled, type RankingMetrics } from './ranking.js';

export interface ServedEmbedding {
  vector: Float32Array;
  eventsInWindow: number;
}

export interface ComparisonOptions {
  /** Largest accepted |served - offline| of any embedding component. @default 1e-4 */
  embeddingTolerance?: number;
  /** Rank changes (users whose target moved) that float noise may explain. @default 2 */
  maxRankChanges?: number;
}

export interface ProtocolComparison {
  pipeline: RankingMetrics;
  offline: RankingMetrics;
  /** The training run's PyTorch numbers, when the set covers its whole test split. */
  trainingRun: RankingMetrics | null;
  rankChanges: number;
  /** Largest |pipeline - offline| over HR@k, NDCG@k and MRR. */
  maxMetricDiff: number;
}

export interface ComparisonReport {
  users: number;
  missing: string[];
  /** Users whose served window is not min(replayed events, max_seq_len) long. */
  windowMismatches: string[];
  maxEmbeddingDiff: number;
  full: ProtocolComparison;
  sampled: ProtocolComparison | null;
  passed: boolean;
  reasons: string[];
}

const COMPARED = ['HR@1', 'HR@5', 'HR@10', 'HR@20', 'NDCG@5', 'NDCG@10', 'NDCG@20', 'MRR'];

function protocol(pipelineRanks: number[], offlineRanks: number[], offline: RankingMetrics, trainingRun: RankingMetrics | undefined): ProtocolComparison {
  const pipeline = metricsFromRanks(pipelineRanks);
  const rankChanges = pipelineRanks.filter((rank, i) => rank !== offlineRanks[i]).length;
  const maxMetricDiff = Math.max(0, ...COMPARED.map((name) => Math.abs((pipeline[name] ?? Number.NaN) - (offline[name] ?? Number.NaN))));
  return { pipeline, offline, trainingRun: trainingRun ?? null, rankChanges, maxMetricDiff };
}

/** max |a_i - b_i|; infinite when the lengths differ or a component is not finite. */
function largestDifference(a: Float32Array, b: readonly number[]): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let largest = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs((a[i] as number) - (b[i] as number));
    largest = Number.isFinite(diff) ? Math.max(largest, diff) : Number.POSITIVE_INFINITY;
  }
  return largest;
}

export function comparePipelineToOffline(
  set: EvaluationSet,
  served: ReadonlyMap<string, ServedEmbedding>,
  table: ItemScorer,
  options: ComparisonOptions = {},
): ComparisonReport {
  const embeddingTolerance = options.embeddingTolerance ?? 1e-4;
  const maxRankChanges = options.maxRankChanges ?? 2;
  const { cases, summary } = set;
  const sampled = cases.every((c) => c.negatives.length > 0 && c.offlineRankSampled !== null);
  const missing: string[] = [];
  const windowMismatches: string[] = [];
  let maxEmbeddingDiff = 0;
  const ranks = { full: [] as number[], sampled: [] as number[], offlineFull: [] as number[], offlineSampled: [] as number[] };
  for (const c of cases) {
    const embedding = served.get(c.userId);
    if (!embedding) {
      missing.push(c.userId);
      continue;
    }
    if (embedding.eventsInWindow !== Math.min(c.events, summary.max_seq_len)) windowMismatches.push(c.userId);
    maxEmbeddingDiff = Math.max(maxEmbeddingDiff, largestDifference(embedding.vector, c.offlineEmbedding));
    // One of another dimension already fails on its difference (infinite); it is still ranked,
    // missing components as 0 and extra ones ignored, so the metrics cover every served user.
    const vector = embedding.vector.length === table.dim ? embedding.vector : Float32Array.from({ length: table.dim }, (_, d) => embedding.vector[d] ?? 0);
    const scores = table.scoreAll(vector);
    ranks.full.push(rankAmongAll(scores, c.target, c.mask));
    ranks.offlineFull.push(c.offlineRankFull);
    if (sampled) {
      ranks.sampled.push(rankAmongSampled(scores, c.target, c.negatives));
      ranks.offlineSampled.push(c.offlineRankSampled ?? -1);
    }
  }
  const full = protocol(ranks.full, ranks.offlineFull, summary.offline.full, summary.training_run?.full);
  const sampledComparison =
    sampled && summary.offline.sampled ? protocol(ranks.sampled, ranks.offlineSampled, summary.offline.sampled, summary.training_run?.sampled) : null;

  const reasons: string[] = [];
  if (missing.length > 0) reasons.push(`${missing.length} users have no served embedding (first: ${missing[0]})`);
  if (windowMismatches.length > 0) reasons.push(`${windowMismatches.length} users have a window of the wrong length (first: ${windowMismatches[0]})`);
  if (!(maxEmbeddingDiff <= embeddingTolerance)) reasons.push(`embeddings differ from the offline ones by up to ${maxEmbeddingDiff.toExponential(2)} (tolerance ${embeddingTolerance})`);
  const metricTolerance = maxRankChanges / Math.max(1, cases.length);
  for (const [name, comparison] of [['full', full], ['sampled', sampledComparison]] as const) {
    if (!comparison) continue;
    if (comparison.rankChanges > maxRankChanges) reasons.push(`${name} ranking: ${comparison.rankChanges} users' targets moved (at most ${maxRankChanges} allowed)`);
    if (!(comparison.maxMetricDiff <= metricTolerance)) reasons.push(`${name} ranking: metrics differ by up to ${comparison.maxMetricDiff.toFixed(5)} (tolerance ${metricTolerance.toFixed(5)})`);
  }
  return { users: cases.length, missing, windowMismatches, maxEmbeddingDiff, full, sampled: sampledComparison, passed: reasons.length === 0, reasons };
}
