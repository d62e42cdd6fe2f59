import test from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSequenceBatch, mergeWindow, timeBucket } from '../../model/features.js';
import { EventKinds, type Stream, type WindowEvent } from '../../events/window-event.js';
import { fnv1a32, playEventKind, tokenizeQuery } from '../../events/featurization.js';
import { ItemVocabulary } from '../../model/model-bundle.js';

// The shared vectors are written by the Python featurization (training/make_feature_vectors.py);
// passing them here is what keeps training and serving features identical.
interface JsonEvent {
  type: 'play' | 'search';
  itemUri?: string;
  eventTimeMs: number;
  msPlayed?: number;
  itemDurationMs?: number;
  endReason?: string;
  query?: string;
  clickedItemUri?: string;
  stream?: string;
  partition?: number;
  offset?: number;
}

interface Vectors {
  fnv1a32: { utf8_hex: string; hash: number }[];
  time_buckets: { delta_ms: number; bucket: number }[];
  play_kinds: { endReason: string; msPlayed: number; itemDurationMs: number; kind: number }[];
  queries: { query: string; query_tokens: number; query_buckets: number; token_ids: number[] }[];
  cases: {
    name: string;
    vocab: string[];
    params: { max_seq_len: number; query_tokens: number; query_buckets: number };
    users: JsonEvent[][];
    expected: Record<'item_ids' | 'event_kinds' | 'gap_buckets' | 'age_buckets', number[][]> & { query_tokens: number[][][] };
  }[];
}

const vectors = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../model/testdata/feature_vectors.json', import.meta.url)), 'utf8'),
) as Vectors;

test('FNV-1a hashes agree with the Python side', (t) => {
  for (const { utf8_hex, hash } of vectors.fnv1a32) t.is(fnv1a32(Buffer.from(utf8_hex, 'hex')), hash, utf8_hex);
});

test('time buckets agree with the Python side', (t) => {
  for (const { delta_ms, bucket } of vectors.time_buckets) t.is(timeBucket(delta_ms), bucket, `delta ${delta_ms}`);
});

test('play kinds agree with the Python side', (t) => {
  for (const c of vectors.play_kinds) t.is(playEventKind(c.endReason, c.msPlayed, c.itemDurationMs) as number, c.kind, JSON.stringify(c));
});

test('query token ids agree with the Python side', (t) => {
  for (const c of vectors.queries) t.deepEqual(tokenizeQuery(c.query, c.query_tokens, c.query_buckets), c.token_ids, c.query);
});

for (const testCase of vectors.cases) {
  test(`model inputs agree with the Python side: ${testCase.name}`, (t) => {
    const { max_seq_len: maxSeqLen, query_tokens: q, query_buckets: buckets } = testCase.params;
    const vocabulary = new ItemVocabulary(testCase.vocab);
    const streams = [...new Set(testCase.users.flat().map((event) => event.stream ?? ''))].sort();
    const windows = testCase.users.map((events) => {
      const window: WindowEvent[] = events.map((event) => ({
        eventTimeMs: event.eventTimeMs,
        stream: streams.indexOf(event.stream ?? '') as Stream,
        partition: event.partition ?? 0,
        offset: event.offset ?? 0,
        itemId: vocabulary.idOf((event.type === 'play' ? event.itemUri : event.clickedItemUri) ?? ''),
        kind:
          event.type === 'play'
            ? playEventKind(event.endReason ?? '', event.msPlayed ?? 0, event.itemDurationMs ?? 0)
            : EventKinds.SEARCH,
        queryTokens: event.type === 'search' ? tokenizeQuery(event.query ?? '', q, buckets) : [],
      }));
      return mergeWindow([], window, maxSeqLen);
    });
    const batch = buildSequenceBatch(windows, q);
    const rows = (array: BigInt64Array, width: number) =>
      Array.from({ length: batch.batchSize }, (_, b) => [...array.subarray(b * width, (b + 1) * width)].map(Number));
    t.deepEqual(rows(batch.itemIds, batch.timeSteps), testCase.expected.item_ids);
    t.deepEqual(rows(batch.eventKinds, batch.timeSteps), testCase.expected.event_kinds);
    t.deepEqual(rows(batch.gapBuckets, batch.timeSteps), testCase.expected.gap_buckets);
    t.deepEqual(rows(batch.ageBuckets, batch.timeSteps), testCase.expected.age_buckets);
    const tokens = rows(batch.queryTokenIds, batch.timeSteps * q).map((row) =>
      Array.from({ length: batch.timeSteps }, (_, step) => row.slice(step * q, (step + 1) * q)),
    );
    t.deepEqual(tokens, testCase.expected.query_tokens);
  });
}
