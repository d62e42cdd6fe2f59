import test from 'ava';
import type { EvaluationSet } from '../../evaluation/evaluation-set.js';
import { comparePipelineToOffline, type ServedEmbedding } from '../../evaluation/pipeline-comparison.js';
import { metricsFromRanks, rankAmongAll, rankAmongSampled } from '../../evaluation/ranking.js';
import { ItemScorer } from '../../model/item-scorer.js';

// Items 2..6 on a line of 2-d vectors; rows 0 and 1 (<pad>, <unk>) are zero like in a real table.
const table = new ItemScorer(Float32Array.from([0, 0, 0, 0, 1, 0, 0.8, 0.6, 0, 1, -1, 0, 0.6, 0.8]), 2);

test('scores are the dot product with every row', (t) => {
  t.deepEqual(Array.from(table.scoreAll([1, 0])), [0, 0, 1, 0.800000011920929, 0, -1, 0.6000000238418579]);
});

test('full ranking counts the items scored strictly higher, never the reserved ids or masked items', (t) => {
  const scores = table.scoreAll([1, 0]); // order: 2 > 3 > 6 > 4 > 5
  t.is(rankAmongAll(scores, 2), 0);
  t.is(rankAmongAll(scores, 6), 2);
  t.is(rankAmongAll(scores, 4), 3, 'the zero-scored reserved rows do not count as ties or above');
  t.is(rankAmongAll(scores, 6, [2, 3]), 0, 'the earlier items are masked');
  t.is(rankAmongAll(scores, 6, [6, 2]), 1, 'the target is never masked');
});

test('sampled ranking counts the negatives scored higher', (t) => {
  const scores = table.scoreAll([1, 0]);
  t.is(rankAmongSampled(scores, 6, [2, 4, 5]), 1);
  t.is(rankAmongSampled(scores, 2, [3, 4, 5, 6]), 0);
});

test('metrics follow the definitions of training/taste_training/evaluate.py', (t) => {
  const m = metricsFromRanks([0, 1, 4, 9, 10, 50]);
  t.is(m['HR@1'], 1 / 6);
  t.is(m['HR@5'], 3 / 6);
  t.is(m['HR@10'], 4 / 6);
  t.is(m['HR@20'], 5 / 6);
  t.true(Math.abs((m['NDCG@5'] ?? 0) - (1 + 1 / Math.log2(3) + 1 / Math.log2(6)) / 6) < 1e-15);
  t.true(Math.abs((m['NDCG@10'] ?? 0) - (1 + 1 / Math.log2(3) + 1 / Math.log2(6) + 1 / Math.log2(11)) / 6) < 1e-15);
  t.true(Math.abs((m['MRR'] ?? 0) - (1 + 1 / 2 + 1 / 5 + 1 / 10 + 1 / 11 + 1 / 51) / 6) < 1e-15);
  t.true(Math.abs((m['MRR@10'] ?? 0) - (1 + 1 / 2 + 1 / 5 + 1 / 10) / 6) < 1e-15);
  t.is(m['users'], 6);
});

function evaluationSet(): EvaluationSet {
  const cases = [
    { userId: 'u1', events: 3, target: 6, mask: [2], negatives: [3, 4, 5], offlineEmbedding: [1, 0] },
    { userId: 'u2', events: 80, target: 4, mask: [], negatives: [2, 3, 5], offlineEmbedding: [0, 1] },
  ].map((c) => {
    const scores = table.scoreAll(c.offlineEmbedding);
    return { ...c, offlineRankFull: rankAmongAll(scores, c.target, c.mask), offlineRankSampled: rankAmongSampled(scores, c.target, c.negatives) };
  });
  const offline = {
    full: metricsFromRanks(cases.map((c) => c.offlineRankFull)),
    sampled: metricsFromRanks(cases.map((c) => c.offlineRankSampled)),
  };
  return {
    directory: 'in-memory',
    eventsPath: 'in-memory/events.jsonl',
    cases,
    summary: { dataset: 'test', model_version: 'v1', max_seq_len: 50, users: 2, events: 83, oldest_event_time_ms: 0, offline, training_run: null, command: '' },
  };
}

function served(entries: [string, number[], number][]): Map<string, ServedEmbedding> {
  return new Map(entries.map(([user, vector, eventsInWindow]) => [user, { vector: Float32Array.from(vector), eventsInWindow }]));
}

test('served embeddings equal to the offline ones pass, with zero rank changes', (t) => {
  const report = comparePipelineToOffline(evaluationSet(), served([['u1', [1, 0], 3], ['u2', [0, 1.00000001], 50]]), table);
  t.true(report.passed, report.reasons.join('; '));
  t.is(report.full.rankChanges, 0);
  t.is(report.sampled?.rankChanges, 0);
  t.is(report.full.maxMetricDiff, 0);
});

test('a drifted embedding fails, naming the drift and the moved targets', (t) => {
  const report = comparePipelineToOffline(evaluationSet(), served([['u1', [-1, 0], 3], ['u2', [0, 1], 50]]), table, { maxRankChanges: 0 });
  t.false(report.passed);
  t.is(report.maxEmbeddingDiff, 2);
  t.is(report.full.rankChanges, 1);
  t.regex(report.reasons.join('\n'), /embeddings differ from the offline ones by up to 2\.00e\+0/);
  t.regex(report.reasons.join('\n'), /full ranking: 1 users' targets moved/);
});

test('a missing user or a window of the wrong length fails', (t) => {
  const missing = comparePipelineToOffline(evaluationSet(), served([['u1', [1, 0], 3]]), table);
  t.false(missing.passed);
  t.deepEqual(missing.missing, ['u2']);
  const short = comparePipelineToOffline(evaluationSet(), served([['u1', [1, 0], 2], ['u2', [0, 1], 50]]), table);
  t.false(short.passed);
  t.deepEqual(short.windowMismatches, ['u1'], 'u1 replayed 3 events; u2 replayed 80, more than max_seq_len');
});

test('an embedding of another dimension counts as an infinite difference', (t) => {
  const report = comparePipelineToOffline(evaluationSet(), served([['u1', [1, 0, 0], 3], ['u2', [0, 1], 50]]), table);
  t.false(report.passed);
  t.is(report.maxEmbeddingDiff, Number.POSITIVE_INFINITY);
});
