import test from 'ava';
import protobuf from 'protobufjs';
import { TasteError } from '../../common/errors.js';
import {
  checkResponseEncoding,
  encodeBatchGetUserEmbeddingsResponse,
  encodeGetUserEmbeddingResponse,
  type ServedBatchGetUserEmbeddingsResponse,
  type ServedEmbedding,
  loadServiceRoot,
} from '../../serving/response-encoding.js';
import { loadServicePackage } from '../../serving/service-definition.js';

// The reference: proto-loader's generic (de)serializers for the same .proto.
const generic = loadServicePackage()['taste.v1.EmbeddingService'] as unknown as Record<
  'GetUserEmbedding' | 'BatchGetUserEmbeddings',
  { responseSerialize: (value: unknown) => Buffer; responseDeserialize: (bytes: Buffer) => unknown }
>;

function embedding(userId: string, overrides: Partial<ServedEmbedding> = {}): ServedEmbedding {
  return {
    userId,
    modelVersion: 'default-2026-11-26-c794956c',
    // Values that need every bit of a float32, and a timestamp beyond 32 bits.
    vector: new Float32Array([0.5, -1.25, 3e-8, 1e30, -0, Math.PI, 1 / 3, -65504]),
    updatedTimeMs: 1_764_140_000_123,
    lastEventTimeMs: 1_764_139_999_000,
    eventsInWindow: 50,
    ...overrides,
  };
}

/** The object the generic encoder takes for the same embedding: plain array and its dimension. */
function asGeneric(served: ServedEmbedding): Record<string, unknown> {
  return { ...served, vector: Array.from(served.vector), dimension: served.vector.length };
}

test('GetUserEmbeddingResponse: the same bytes as the generic encoder', (t) => {
  const served = embedding('alice');
  const direct = encodeGetUserEmbeddingResponse({ embedding: served });
  t.deepEqual(direct, generic.GetUserEmbedding.responseSerialize({ embedding: asGeneric(served) }));
  const decoded = generic.GetUserEmbedding.responseDeserialize(direct) as { embedding: { vector: number[]; dimension: number } };
  t.deepEqual(decoded.embedding.vector, Array.from(served.vector));
  t.is(decoded.embedding.dimension, 8);
});

test('BatchGetUserEmbeddingsResponse: embeddings and per-user errors, in order, the same bytes as the generic encoder', (t) => {
  const response: ServedBatchGetUserEmbeddingsResponse = {
    results: [
      { userId: 'alice', embedding: embedding('alice') },
      { userId: 'bob', error: { code: 5, message: 'no embedding for this user and model version' } },
      { userId: 'carol', embedding: embedding('carol', { vector: new Float32Array(64).map((_, i) => i / 64) }) },
      { userId: 'bad id', error: { code: 3, message: 'user id "bad id" is not valid' } },
    ],
    modelVersion: 'default-2026-11-26-c794956c',
  };
  const direct = encodeBatchGetUserEmbeddingsResponse(response);
  const reference = generic.BatchGetUserEmbeddings.responseSerialize({
    ...response,
    results: response.results.map((result) => ('embedding' in result ? { ...result, embedding: asGeneric(result.embedding) } : result)),
  });
  t.deepEqual(direct, reference);
  const decoded = generic.BatchGetUserEmbeddings.responseDeserialize(direct) as { results: { userId: string; result: string }[] };
  t.deepEqual(
    decoded.results.map(({ userId, result }) => `${userId}:${result}`),
    ['alice:embedding', 'bob:error', 'carol:embedding', 'bad id:error'],
  );
});

test('default values decode as their defaults, and an empty embedding is still an embedding', (t) => {
  const empty = embedding('', { modelVersion: '', vector: new Float32Array(0), updatedTimeMs: 0, lastEventTimeMs: 0, eventsInWindow: 0 });
  const decoded = generic.BatchGetUserEmbeddings.responseDeserialize(
    encodeBatchGetUserEmbeddingsResponse({ results: [{ userId: '', embedding: empty }, { userId: 'x', error: { code: 0, message: '' } }], modelVersion: '' }),
  );
  t.deepEqual(decoded, {
    results: [
      {
        userId: '',
        result: 'embedding',
        embedding: { userId: '', modelVersion: '', vector: [], dimension: 0, updatedTimeMs: 0, lastEventTimeMs: 0, eventsInWindow: 0 },
      },
      { userId: 'x', result: 'error', error: { code: 0, message: '' } },
    ],
    modelVersion: '',
  });
});

test('a vector that is a view into a larger buffer is written from its own bytes only', (t) => {
  const backing = new Float32Array([9, 9, 1, 2, 3, 9]);
  const served = embedding('alice', { vector: backing.subarray(2, 5) });
  const decoded = generic.GetUserEmbedding.responseDeserialize(encodeGetUserEmbeddingResponse({ embedding: served })) as {
    embedding: { vector: number[] };
  };
  t.deepEqual(decoded.embedding.vector, [1, 2, 3]);
});

test('multi-byte text, long strings and negative integers: the same bytes as the generic encoder', (t) => {
  const served = embedding('usér-ñ-😀', { modelVersion: 'v'.repeat(200), updatedTimeMs: -1, lastEventTimeMs: -1_764_139_999_000, eventsInWindow: 300 });
  const response: ServedBatchGetUserEmbeddingsResponse = {
    results: [
      { userId: served.userId, embedding: served },
      { userId: 'x'.repeat(20_000), error: { code: -3, message: 'ünïcödé 😀 '.repeat(50) } },
    ],
    modelVersion: 'é',
  };
  const reference = generic.BatchGetUserEmbeddings.responseSerialize({
    ...response,
    results: response.results.map((result) => ('embedding' in result ? { ...result, embedding: asGeneric(result.embedding) } : result)),
  });
  t.deepEqual(encodeBatchGetUserEmbeddingsResponse(response), reference);
  t.deepEqual(encodeGetUserEmbeddingResponse({ embedding: served }), generic.GetUserEmbedding.responseSerialize({ embedding: asGeneric(served) }));
});

test('varint boundaries, up to the largest safe integer: the same bytes as the generic encoder', (t) => {
  const values = [1, 127, 128, 2 ** 14, 2 ** 21 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 5, 2 ** 42, 2 ** 49 - 1, Number.MAX_SAFE_INTEGER];
  for (const value of values) {
    const served = embedding('u', { updatedTimeMs: value, lastEventTimeMs: value, eventsInWindow: Math.min(value, 2 ** 32 - 1) });
    const direct = encodeGetUserEmbeddingResponse({ embedding: served });
    t.deepEqual(direct, generic.GetUserEmbedding.responseSerialize({ embedding: asGeneric(served) }), `value ${value}`);
  }
});

test('every field the .proto declares in the responses is written by the encoders', (t) => {
  t.notThrows(() => checkResponseEncoding(loadServiceRoot()));
});

test('a field added to a response message in the .proto but not to the encoders fails the check, which names it', (t) => {
  const root = loadServiceRoot();
  root.lookupType('taste.v1.UserEmbedding').add(new protobuf.Field('embedding_norm', 8, 'float'));
  const error = t.throws(() => checkResponseEncoding(root), { instanceOf: TasteError });
  t.regex(error?.message ?? '', /do not write taste\.v1\.UserEmbedding\.embedding_norm \(field 8\): responses would drop it/);
});

test('a new nested message and a new oneof member are checked too, every missing field named', (t) => {
  const root = loadServiceRoot();
  (root.lookup('taste.v1') as protobuf.Namespace).add(new protobuf.Type('Page').add(new protobuf.Field('next_token', 1, 'string')));
  root.lookupType('taste.v1.BatchGetUserEmbeddingsResponse').add(new protobuf.Field('page', 3, 'Page'));
  const result = root.lookupType('taste.v1.UserEmbeddingResult');
  result.add(new protobuf.Field('retry_after_ms', 4, 'int64'));
  result.oneofs['result']!.add(result.fields['retry_after_ms']!);
  const error = t.throws(() => checkResponseEncoding(root), { instanceOf: TasteError });
  for (const field of ['taste.v1.BatchGetUserEmbeddingsResponse.page (field 3)', 'taste.v1.Page.next_token (field 1)', 'taste.v1.UserEmbeddingResult.retry_after_ms (field 4)']) {
    t.true(error?.message.includes(field), `names ${field}: ${error?.message}`);
  }
});
