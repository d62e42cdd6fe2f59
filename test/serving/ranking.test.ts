import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import anyTest, { type TestFn } from 'ava';
import type { Redis } from 'ioredis';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';
import { ItemRetrieval } from '../../model/item-retrieval.js';
import { loadModelBundle } from '../../model/model-bundle.js';
import { createEmbeddingClient, recommendItems, scoreItems, type EmbeddingServiceClient } from '../../serving/client.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { DEFAULT_MODEL_DIR, REDIS_URL, unique } from '../helpers/environment.js';

// ScoreItems and RecommendItems on a real server, over Redis and the real model directory. The
// expected scores come from the model directory's files as this test reads them (items.tsv and
// item_embeddings.f32), not from the server's item table.

interface Served {
  serving: ServingServer;
  client: EmbeddingServiceClient;
}

interface Context {
  redis: RedisClient;
  prefix: string;
  version: string;
  /** Exact search; the model version and a second version served without an item table. */
  main: Served;
  /** The same table behind the approximate index (built although the table is small). */
  ann: Served;
  /** The test's own reading of the model directory. */
  uris: string[];
  rows: Float32Array[];
  users: Map<string, Float32Array>;
  /** The history user's window: their best track, episode and chapter, so excluding them shows. */
  history: string[];
}

const test = anyTest as TestFn<Context>;
const execFileAsync = promisify(execFile);
// The project's own training venv (training/setup.sh, which scripts/test.sh runs before ava).
const PYTHON = process.env.TASTE_TEST_PYTHON ?? fileURLToPath(new URL('../../../training/.venv/bin/python', import.meta.url));
/** With TASTE_SKIP_PYTHON_TESTS there is no venv: the Python client's test is skipped, not failed. */
const pythonTest = process.env.TASTE_SKIP_PYTHON_TESTS ? test.skip : test;

const MAX_CANDIDATES = 600;
const MAX_K = 300;
const NO_TABLE_VERSION = 'embeddings-only';
const HISTORY_USER = 'ranker';
const ANN_USERS = Array.from({ length: 20 }, (_, i) => `ann-user-${i}`);

/** A deterministic unit vector, from a small LCG (not the server's code). */
function unitVector(seed: number, dim: number): Float32Array {
  let state = seed >>> 0;
  const values = Array.from({ length: dim }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  });
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
}

/** user · row, in float64, in dimension order. */
function dot(user: Float32Array, row: Float32Array): number {
  let sum = 0;
  for (let d = 0; d < row.length; d++) sum += user[d]! * row[d]!;
  return sum;
}

/** Brute force: every item (not <pad>, <unk>) that passes `keep`, best first, ties by id. */
function bruteForce(t: { context: Context }, user: Float32Array, k: number, keep: (uri: string) => boolean = () => true): { uri: string; score: number }[] {
  const { uris, rows } = t.context;
  return uris
    .map((uri, id) => ({ uri, id, score: dot(user, rows[id]!) }))
    .filter(({ id, uri }) => id >= 2 && keep(uri))
    .sort((a, b) => b.score - a.score || a.id - b.id)
    .slice(0, k)
    .map(({ uri, score }) => ({ uri, score }));
}

test.before(async (t) => {
  // The test's own reading of the model directory.
  const uris = (await readFile(join(DEFAULT_MODEL_DIR, 'items.tsv'), 'utf8')).split('\n').filter((line) => line !== '');
  const tableBytes = await readFile(join(DEFAULT_MODEL_DIR, 'item_embeddings.f32'));
  const dim = tableBytes.byteLength / 4 / uris.length;
  const rows = uris.map((_, id) => Float32Array.from({ length: dim }, (_, d) => tableBytes.readFloatLE((id * dim + d) * 4)));

  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const version = bundle.metadata.modelVersion;
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-ranking' });
  await waitForRedis(redis);
  const prefix = unique('test-ranking');
  const store = new FeatureStore({ redis, modelVersion: version, queryTokens: bundle.metadata.queryTokens, embeddingDim: dim, keyPrefix: prefix });
  const noTable = new FeatureStore({ redis, modelVersion: NO_TABLE_VERSION, queryTokens: bundle.metadata.queryTokens, keyPrefix: prefix });

  const users = new Map<string, Float32Array>([[HISTORY_USER, unitVector(7, dim)], ...ANN_USERS.map((user, i): [string, Float32Array] => [user, unitVector(100 + i, dim)])]);
  const historyUser = users.get(HISTORY_USER)!;
  const best = (prefix: string) => {
    let bestId = -1;
    uris.forEach((uri, id) => {
      if (uri.startsWith(prefix) && (bestId < 0 || dot(historyUser, rows[id]!) > dot(historyUser, rows[bestId]!))) bestId = id;
    });
    return uris[bestId]!;
  };
  const history = [best('taste:track:'), best('taste:episode:'), best('taste:chapter:')];
  const window = history.map((uri, offset): WindowEvent => ({
    eventTimeMs: 1_764_000_000_000 + offset,
    stream: Streams.PLAY,
    partition: 0,
    offset,
    itemId: uris.indexOf(uri),
    kind: EventKinds.PLAY,
    queryTokens: [],
  }));
  const written = await store.writeStates(
    [...users].map(([userId, embedding]) => ({
      userId,
      expectedVersion: 0,
      window: userId === HISTORY_USER ? window : [],
      highWater: new Map(),
      embedding,
      updatedMs: 1_764_000_005_000,
      appliedTotal: window.length,
    })),
  );
  t.true(written.every((outcome) => outcome === 'written'));
  await noTable.writeStates([{ userId: HISTORY_USER, expectedVersion: 0, window: [], highWater: new Map(), embedding: users.get(HISTORY_USER)!, updatedMs: 1, appliedTotal: 0 }]);

  const serve = async (itemTable: ItemRetrieval): Promise<Served> => {
    const serving = await startServingServer({
      port: 0,
      redis,
      healthProbeIntervalMs: 200,
      shutdownTimeoutMs: 2000,
      service: {
        stores: [store, noTable],
        defaultModelVersion: version,
        itemTables: new Map([[version, itemTable]]),
        maxCandidates: MAX_CANDIDATES,
        maxK: MAX_K,
      },
    });
    return { serving, client: createEmbeddingClient(serving.address) };
  };
  const main = await serve(new ItemRetrieval(bundle.itemTable, bundle.vocabulary));
  const ann = await serve(new ItemRetrieval(bundle.itemTable, bundle.vocabulary, { annMinItems: 0 }));
  t.context = { redis, prefix, version, main, ann, uris, rows, users, history };
});

test.after.always(async (t) => {
  const { redis, prefix, main, ann } = t.context;
  for (const served of [main, ann].filter(Boolean)) {
    served.client.close();
    await served.serving.close();
  }
  if (redis) {
    const keys: string[] = [];
    for await (const batch of (redis as Redis).scanStream({ match: `${prefix}:*`, count: 1000 })) keys.push(...(batch as string[]));
    if (keys.length > 0) await Promise.all(keys.map((key) => redis.del(key)));
    redis.disconnect();
  }
});

async function rpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error('expected the call to fail');
}

test("ScoreItems: one score per candidate in request order, each the user's dot product with the item's row", async (t) => {
  const { uris, rows, users } = t.context;
  const user = users.get(HISTORY_USER)!;
  // 500 candidates spread over the table, in a scrambled order, with a duplicate.
  const candidates = Array.from({ length: 500 }, (_, i) => uris[2 + ((i * 7919) % (uris.length - 2))]!);
  candidates[499] = candidates[0]!;
  const response = await scoreItems(t.context.main.client, { userId: HISTORY_USER, itemUris: candidates });
  t.is(response.modelVersion, t.context.version);
  t.deepEqual(
    response.scores,
    candidates.map((itemUri) => dot(user, rows[uris.indexOf(itemUri)]!)),
  );
  t.deepEqual(response.itemErrors, []);
});

test('ScoreItems: an unknown or empty URI fails only its own result; the others are scored', async (t) => {
  const { uris, rows, users } = t.context;
  const response = await scoreItems(t.context.main.client, { userId: HISTORY_USER, itemUris: ['taste:track:2', 'taste:track:999999', '', '<pad>', 'taste:episode:3'] });
  const user = users.get(HISTORY_USER)!;
  t.deepEqual(response.scores, [dot(user, rows[uris.indexOf('taste:track:2')]!), 0, 0, 0, dot(user, rows[uris.indexOf('taste:episode:3')]!)]);
  t.deepEqual(
    response.itemErrors.map(({ index, itemUri, error }) => ({ index, itemUri, code: error?.code })),
    [
      { index: 1, itemUri: 'taste:track:999999', code: grpc.status.NOT_FOUND },
      { index: 2, itemUri: '', code: grpc.status.INVALID_ARGUMENT },
      { index: 3, itemUri: '<pad>', code: grpc.status.NOT_FOUND }, // the reserved rows are not items
    ],
  );
  t.regex(response.itemErrors[0]?.error?.message ?? '', /not in the item table/);
});

test('ScoreItems limits: the limit is served, one more or none is INVALID_ARGUMENT naming it', async (t) => {
  const { client } = t.context.main;
  const atLimit = await scoreItems(client, { userId: HISTORY_USER, itemUris: Array.from({ length: MAX_CANDIDATES }, () => 'taste:track:5') });
  t.is(atLimit.scores.length, MAX_CANDIDATES);
  const over = await rpcError(scoreItems(client, { userId: HISTORY_USER, itemUris: Array.from({ length: MAX_CANDIDATES + 1 }, () => 'taste:track:5') }));
  t.is(over.code, grpc.status.INVALID_ARGUMENT);
  t.regex(over.details, new RegExp(`${MAX_CANDIDATES + 1} item_uris is over the limit of ${MAX_CANDIDATES}.*--max-candidates`));
  t.is((await rpcError(scoreItems(client, { userId: HISTORY_USER, itemUris: [] }))).code, grpc.status.INVALID_ARGUMENT);
});

test('ScoreItems and RecommendItems: a version without an item table is FAILED_PRECONDITION naming the flag; an unknown version NOT_FOUND; an unknown user NOT_FOUND', async (t) => {
  const { client } = t.context.main;
  const noTable = await rpcError(scoreItems(client, { userId: HISTORY_USER, itemUris: ['taste:track:2'], modelVersion: NO_TABLE_VERSION }));
  t.is(noTable.code, grpc.status.FAILED_PRECONDITION);
  t.regex(noTable.details, /"embeddings-only" is served without its item table.*--model.*--item-model/);
  t.is((await rpcError(recommendItems(client, { userId: HISTORY_USER, k: 5, modelVersion: NO_TABLE_VERSION }))).code, grpc.status.FAILED_PRECONDITION);
  const unknown = await rpcError(scoreItems(client, { userId: HISTORY_USER, itemUris: ['taste:track:2'], modelVersion: 'v-nowhere' }));
  t.is(unknown.code, grpc.status.NOT_FOUND);
  t.regex(unknown.details, /"v-nowhere" is not served here/);
  t.is((await rpcError(scoreItems(client, { userId: 'nobody-here', itemUris: ['taste:track:2'] }))).code, grpc.status.NOT_FOUND);
  t.is((await rpcError(recommendItems(client, { userId: 'nobody-here', k: 3 }))).code, grpc.status.NOT_FOUND);
});

test('RecommendItems (exact): the top k of a brute-force ranking of the whole table, with kinds', async (t) => {
  const user = t.context.users.get(HISTORY_USER)!;
  const response = await recommendItems(t.context.main.client, { userId: HISTORY_USER, k: 100 });
  t.false(response.approximate);
  t.deepEqual(
    response.items.map(({ itemUri, score }) => ({ uri: itemUri, score })),
    bruteForce(t, user, 100),
  );
  const kinds = { track: 'ITEM_KIND_TRACK', episode: 'ITEM_KIND_PODCAST_EPISODE', chapter: 'ITEM_KIND_AUDIOBOOK_CHAPTER' } as Record<string, string>;
  t.true(response.items.every(({ itemUri, kind }) => kind === kinds[itemUri.split(':')[1]!]));
});

test('RecommendItems filters: item kinds keep only those kinds; exclude_history leaves out the stored window', async (t) => {
  const { client } = t.context.main;
  const user = t.context.users.get(HISTORY_USER)!;
  const spoken = await recommendItems(client, { userId: HISTORY_USER, k: 50, filters: { itemKinds: ['ITEM_KIND_PODCAST_EPISODE', 'ITEM_KIND_AUDIOBOOK_CHAPTER'] } });
  t.deepEqual(
    spoken.items.map(({ itemUri, score }) => ({ uri: itemUri, score })),
    bruteForce(t, user, 50, (uri) => uri.startsWith('taste:episode:') || uri.startsWith('taste:chapter:')),
  );

  const { history } = t.context;
  const all = bruteForce(t, user, t.context.uris.length);
  const withHistory = await recommendItems(client, { userId: HISTORY_USER, k: MAX_K });
  const without = await recommendItems(client, { userId: HISTORY_USER, k: MAX_K, filters: { excludeHistory: true } });
  t.deepEqual(
    without.items.map(({ itemUri }) => itemUri),
    all.filter(({ uri }) => !history.includes(uri)).slice(0, MAX_K).map(({ uri }) => uri),
  );
  t.true(history.every((uri) => withHistory.items.some(({ itemUri }) => itemUri === uri)), 'without the filter, the history items are in the top k');
  // Both filters together: episodes only, and the episode in the history is not among them.
  const episodes = await recommendItems(client, { userId: HISTORY_USER, k: 300, filters: { itemKinds: ['ITEM_KIND_PODCAST_EPISODE'], excludeHistory: true } });
  t.is(episodes.items.length, 299, 'every episode but the one in the history (300 in the table)');
  t.false(episodes.items.some(({ itemUri }) => itemUri === history[1]));
});

test('RecommendItems limits: k = 0, k over the limit and UNSPECIFIED as a kind are INVALID_ARGUMENT', async (t) => {
  const { client } = t.context.main;
  t.is((await rpcError(recommendItems(client, { userId: HISTORY_USER, k: 0 }))).code, grpc.status.INVALID_ARGUMENT);
  const over = await rpcError(recommendItems(client, { userId: HISTORY_USER, k: MAX_K + 1 }));
  t.is(over.code, grpc.status.INVALID_ARGUMENT);
  t.regex(over.details, new RegExp(`k = ${MAX_K + 1} is over the limit of ${MAX_K}`));
  const unspecified = await rpcError(recommendItems(client, { userId: HISTORY_USER, k: 3, filters: { itemKinds: ['ITEM_KIND_UNSPECIFIED'] } }));
  t.is(unspecified.code, grpc.status.INVALID_ARGUMENT);
});

test('RecommendItems (approximate index over the real item table): recall@100 against brute force is above 0.95, with exact scores', async (t) => {
  let hits = 0;
  for (const userId of ANN_USERS) {
    const user = t.context.users.get(userId)!;
    const response = await recommendItems(t.context.ann.client, { userId, k: 100 });
    t.true(response.approximate);
    t.is(response.items.length, 100);
    const truth = new Map(bruteForce(t, user, 100).map(({ uri, score }) => [uri, score]));
    for (const { itemUri, score } of response.items) {
      if (truth.has(itemUri)) hits++;
      t.is(score, dot(user, t.context.rows[t.context.uris.indexOf(itemUri)]!), 'the served score is the exact dot product');
    }
  }
  const recall = hits / (ANN_USERS.length * 100);
  t.log(`recall@100 over ${ANN_USERS.length} users: ${recall.toFixed(4)}`);
  t.true(recall >= 0.95, `recall@100 ${recall}`);
});

pythonTest('a Python grpcio client (stubs from the .proto by grpc_tools.protoc) gets the same scores', async (t) => {
  const { uris, rows, users } = t.context;
  const candidates = ['taste:track:10', 'taste:chapter:4', 'taste:track:unknown', 'taste:episode:9'];
  const dir = await mkdtemp(join(tmpdir(), 'taste-py-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = `
import json, sys
from grpc_tools import protoc
proto_root, out = sys.argv[1], sys.argv[2]
import grpc_tools, os
includes = os.path.join(os.path.dirname(grpc_tools.__file__), '_proto')
assert protoc.main(['protoc', '-I' + proto_root, '-I' + includes, '--python_out=' + out, '--grpc_python_out=' + out,
                    'taste/v1/events.proto', 'taste/v1/embedding_service.proto']) == 0
sys.path.insert(0, out)
import grpc
from taste.v1 import embedding_service_pb2 as pb, embedding_service_pb2_grpc as rpc
with grpc.insecure_channel(sys.argv[3]) as channel:
    response = rpc.EmbeddingServiceStub(channel).ScoreItems(
        pb.ScoreItemsRequest(user_id=sys.argv[4], item_uris=json.loads(sys.argv[5])), timeout=5)
print(json.dumps({'model_version': response.model_version, 'scores': list(response.scores),
    'item_errors': [{'index': e.index, 'item_uri': e.item_uri, 'code': e.error.code} for e in response.item_errors]}))
`;
  await writeFile(join(dir, 'client.py'), script);
  const protoRoot = new URL('../../../proto', import.meta.url).pathname;
  const { stdout } = await execFileAsync(PYTHON, [join(dir, 'client.py'), protoRoot, dir, t.context.main.serving.address, HISTORY_USER, JSON.stringify(candidates)], { timeout: 60_000 });
  const user = users.get(HISTORY_USER)!;
  t.deepEqual(JSON.parse(stdout), {
    model_version: t.context.version,
    scores: candidates.map((uri) => (uris.includes(uri) ? dot(user, rows[uris.indexOf(uri)]!) : 0)),
    item_errors: [{ index: 2, item_uri: 'taste:track:unknown', code: grpc.status.NOT_FOUND }],
  });
});
