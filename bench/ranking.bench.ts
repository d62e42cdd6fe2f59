// Ranking RPCs (issue 18). Part 1, in this process: RecommendItems' search, the HNSW index
// (model/ann-index.ts, usearch) against exact search (ItemScorer.topK) on a synthetic clustered
// table of --items × 64 at k = 100: recall@100, QPS, p99 at half load, build time and memory; exact
// search time by table size (the --ann-min-items default); and the real model's table. Part 2,
// through a `taste serve` child process: ScoreItems with 500 candidates against GetUserEmbedding +
// the same scoring in the client, in the same run.
import { spawn } from 'node:child_process';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { ItemScorer } from '../model/item-scorer.js';
import { ItemRetrieval } from '../model/item-retrieval.js';
import { ItemVocabulary, loadModelBundle } from '../model/model-bundle.js';
import { createEmbeddingClient, getUserEmbedding, scoreItems } from '../serving/client.js';
import { Random } from '../simulator/random.js';
import { machineLoad, withCpu } from './lib/cpu.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { closedLoop, openLoop, type LoadResult } from './lib/load.js';
import { Report } from './lib/report.js';
import { deleteKeys, freePort, seedUsers } from './lib/services.js';
import { fmt, sleep, spread, summarize } from './lib/stats.js';

const args = benchArgs({ items: { type: 'string' }, queries: { type: 'string' }, seconds: { type: 'string' }, 'skip-serve': { type: 'boolean' } });
const report = new Report('ranking');
const N = numberArg(args, 'items', args.long ? 1_000_000 : 200_000);
const D = 64;
const K = 100;
const Q = numberArg(args, 'queries', 100);
const seconds = numberArg(args, 'seconds', args.long ? 5 : 2);
const rng = new Random('ranking');
const gauss = () => Math.sqrt(-2 * Math.log(rng.float() || 1e-12)) * Math.cos(2 * Math.PI * rng.float());
const unit = (values: number[]) => {
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (value) => value / norm);
};

/** The 1st..n-th item of a table (rows 0, 1: <pad>, <unk>), as the catalogue names them. */
function vocabularyOf(rows: number): ItemVocabulary {
  return new ItemVocabulary(['<pad>', '<unk>', ...Array.from({ length: rows - 2 }, (_, i) => (i % 16 === 0 ? `taste:episode:${i}` : `taste:track:${i}`))]);
}

/** Sequential QPS and per-call ms of `fn` over the queries, `rounds` times through. */
function timeQueries(queries: readonly Float32Array[], fn: (query: Float32Array) => unknown, minMs: number): { qps: number; ms: number[] } {
  const ms: number[] = [];
  const started = performance.now();
  for (let i = 0; performance.now() - started < minMs || i < queries.length; i++) {
    const t0 = performance.now();
    fn(queries[i % queries.length]!);
    ms.push(performance.now() - t0);
  }
  return { qps: (ms.length * 1000) / (performance.now() - started), ms };
}

// ---------------------------------------------------------------------------------------------
// Part 1: retrieval. A clustered table (items around 1,000 centres, row norms 0.5..1.2 as in a
// trained table); queries are unit vectors near random centres, like users near their tastes.
{
  const centres = Array.from({ length: 1000 }, () => Array.from({ length: D }, gauss));
  const vectors = new Float32Array(N * D);
  for (let id = 2; id < N; id++) {
    const centre = centres[rng.int(centres.length)]!;
    const row = centre.map((value) => value + 0.7 * gauss());
    const scale = (0.5 + 0.7 * rng.float()) / Math.hypot(...row);
    for (let d = 0; d < D; d++) vectors[id * D + d] = row[d]! * scale;
  }
  const queries = Array.from({ length: Q }, () => unit(centres[rng.int(centres.length)]!.map((value) => value + gauss())));
  const scorer = new ItemScorer(vectors, D);
  const vocabulary = vocabularyOf(N);
  const exact = new ItemRetrieval(scorer, vocabulary, { annMinItems: N + 1 });
  report.info(`synthetic table ${N} × ${D}, ${Q} queries, k = ${K}; load ${machineLoad()}`);

  // Exact search time by table size: where the index starts to pay (the --ann-min-items default).
  for (const rows of [10_000, 50_000, 100_000, N].filter((rows) => rows <= N)) {
    const part = new ItemScorer(vectors.subarray(0, rows * D), D);
    const { ms } = timeQueries(queries.slice(0, 20), (query) => part.topK(query, K), 300);
    const s = summarize(ms);
    report.info(`exact top-${K} over ${rows} items: p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms per query (one core)`);
    report.context(`exact.ms.${rows}`, s);
  }

  const rssBefore = process.memoryUsage().rss;
  const ann = new ItemRetrieval(scorer, vocabulary, { annMinItems: 0 });
  const index = ann.index!;
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  report.info(`index built in ${index.buildSeconds.toFixed(1)} s (usearch HNSW, connectivity ${index.connectivity}, expansion_search ${index.expansionSearch}); RSS +${fmt(rssGrowth / 2 ** 20)} MiB, estimate ${fmt(index.memoryBytes / 2 ** 20)} MiB`);

  const truth = queries.map((query) => new Set(exact.recommend(query, K).items.map(({ id }) => id)));
  let hits = 0;
  queries.forEach((query, i) => {
    hits += ann.recommend(query, K).items.filter(({ id }) => truth[i]!.has(id)).length;
  });
  const recall = hits / (Q * K);
  report.figure({
    id: 'ranking.ann.recall_at_100',
    label: `RecommendItems through the HNSW index: recall@100 against exact search (${N} × ${D} synthetic, ${Q} queries)`,
    unit: 'recall',
    value: recall,
    ceiling: 1,
    ceilingLabel: 'exact search',
    goal: { kind: 'min-ratio', target: 0.95 },
  });

  // The search beam: recall against time on this table (the figures below use the default).
  const beams: Record<string, { recall: number; msPerQuery: number }> = {};
  for (const beam of [128, 256, 512, 1024]) {
    let beamHits = 0;
    const started = performance.now();
    queries.forEach((query, i) => {
      beamHits += index.search(query, K, beam).filter(({ id }) => truth[i]!.has(id)).length;
    });
    beams[beam] = { recall: beamHits / (Q * K), msPerQuery: (performance.now() - started) / Q };
    report.info(`beam ${beam}: recall@100 ${beams[beam]!.recall.toFixed(3)}, ${beams[beam]!.msPerQuery.toFixed(2)} ms per search`);
  }
  report.context('ann.beams', beams);

  const exactRuns: number[] = [];
  const annRuns: number[] = [];
  let annMs: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    exactRuns.push(timeQueries(queries.slice(0, 10), (query) => exact.recommend(query, K), 1000).qps);
    const timed = timeQueries(queries, (query) => ann.recommend(query, K), 1000);
    annRuns.push(timed.qps);
    annMs = annMs.concat(timed.ms);
  }
  const es = spread(exactRuns);
  const as = spread(annRuns);
  report.figure({
    id: 'ranking.ann.qps',
    label: `top-${K} queries/s on one core: HNSW index (+ exact re-scoring of its candidates) vs exact search of all ${N} items`,
    unit: 'queries/s',
    value: as.median,
    spread: as,
    ceiling: es.median,
    ceilingSpread: es,
    ceilingLabel: 'exact search',
    goal: { kind: 'min-ratio', target: 20 },
    note: `one query at a time: p50 ${summarize(annMs).p50.toFixed(2)} ms, p99 ${summarize(annMs).p99.toFixed(2)} ms; exact ${(1000 / es.median).toFixed(1)} ms per query`,
  });

  // p99 at half the index's max rate, open loop (the search is synchronous: queueing shows).
  const half = Math.max(10, Math.round(as.median / 2));
  const openAnn = await openLoop(async (i) => ann.recommend(queries[i % Q]!, K), half, seconds * 1000);
  const openSummary = summarize(openAnn.latenciesMs);
  const exactHalf = Math.max(1, Math.round(es.median / 2));
  const openExact = summarize((await openLoop(async (i) => exact.recommend(queries[i % Q]!, K), exactHalf, seconds * 1000)).latenciesMs);
  report.figure({
    id: 'ranking.ann.p99_half_load',
    label: `index top-${K} p99 at half its max rate (${half}/s, open loop) vs exact search's p99 at half its own max (${exactHalf}/s)`,
    unit: 'ms',
    value: openSummary.p99,
    ceiling: openExact.p99,
    ceilingLabel: 'exact p99 at its half load',
    lowerIsBetter: true,
    note: `index p50 ${openSummary.p50.toFixed(2)} ms, ${openAnn.calls} calls; exact p50 ${openExact.p50.toFixed(2)} ms`,
  });
  report.figure({
    id: 'ranking.ann.build_seconds',
    label: `HNSW index build at model load, ${N} × ${D} (2 threads on this machine)`,
    unit: 's',
    value: index.buildSeconds,
  });
  report.figure({
    id: 'ranking.ann.memory_mib',
    label: `index memory (estimate: rows + links) vs the item table itself (${N} × ${D} float32); RSS grew ${fmt(rssGrowth / 2 ** 20)} MiB during the build`,
    unit: 'MiB',
    value: index.memoryBytes / 2 ** 20,
    ceiling: vectors.byteLength / 2 ** 20,
    ceilingLabel: 'item table',
    lowerIsBetter: true,
  });

  // Filters with the index: episodes only (1 in 16 items), and a 50-item history excluded.
  const episodes = new Set(['ITEM_KIND_PODCAST_EPISODE'] as const);
  let filteredHits = 0;
  let approximate = 0;
  for (const query of queries.slice(0, 20)) {
    const want = new Set(exact.recommend(query, K, { kinds: episodes }).items.map(({ id }) => id));
    const got = ann.recommend(query, K, { kinds: episodes });
    if (got.approximate) approximate++;
    filteredHits += got.items.filter(({ id }) => want.has(id)).length;
  }
  report.info(`filtered (episodes only, 1/16 of items): recall@100 ${(filteredHits / (20 * K)).toFixed(3)}, ${approximate}/20 answered by the index (else the exact fallback)`);
  report.context('filtered.episodes', { recall: filteredHits / (20 * K), approximate, of: 20 });
}

// The real model's table (models/default): the index against exact search, user vectors as queries.
{
  const bundle = await loadModelBundle(MODEL_DIR);
  const exact = new ItemRetrieval(bundle.itemTable, bundle.vocabulary, { annMinItems: Number.MAX_SAFE_INTEGER });
  const ann = new ItemRetrieval(bundle.itemTable, bundle.vocabulary, { annMinItems: 0 });
  const users = Array.from({ length: 200 }, () => unit(Array.from({ length: bundle.metadata.embeddingDim }, gauss)));
  let hits = 0;
  let same = 0;
  for (const user of users) {
    const want = exact.recommend(user, K).items.map(({ id }) => id);
    const got = ann.recommend(user, K).items.map(({ id }) => id);
    const wanted = new Set(want);
    hits += got.filter((id) => wanted.has(id)).length;
    if (got.every((id, i) => id === want[i])) same++;
  }
  report.figure({
    id: 'ranking.ann.real_table_recall_at_100',
    label: `models/default (${exact.items} items × ${bundle.metadata.embeddingDim}): index recall@100 against exact search, 200 random users (${same}/200 identical top-100 lists)`,
    unit: 'recall',
    value: hits / (users.length * K),
    ceiling: 1,
    ceilingLabel: 'exact search',
    goal: { kind: 'min-ratio', target: 0.95 },
    note: `index build ${ann.index!.buildSeconds.toFixed(2)} s`,
  });
}

// ---------------------------------------------------------------------------------------------
// Part 2: ScoreItems(500) through `taste serve` vs GetUserEmbedding + scoring in the client.
if (!args.values['skip-serve']) {
  const bundle = await loadModelBundle(MODEL_DIR);
  const { metadata } = bundle;
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
  await waitForRedis(redis);
  const prefix = unique('ranking');
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
  const userIds = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
  await seedUsers(store, userIds, metadata);
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [`${REPO_ROOT}dist/cli/main.js`, 'serve', '--host', '127.0.0.1', '--port', String(port), '--redis-url', REDIS_URL, '--key-prefix', prefix, '--model', MODEL_DIR, '--metrics-port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const client = createEmbeddingClient(`127.0.0.1:${port}`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await getUserEmbedding(client, { userId: userIds[0]! }, 1000);
        break;
      } catch (error) {
        if (attempt > 100) throw new Error(`taste serve did not answer on port ${port}: ${(error as Error).message}`);
        await sleep(100);
      }
    }
    const items = bundle.itemTable.rows;
    const candidateSets = Array.from({ length: 50 }, () => Array.from({ length: 500 }, () => bundle.vocabulary.uriOf(2 + rng.int(items - 2))!));
    const pickUser = () => userIds[rng.int(userIds.length)]!;
    const server = (i: number) => scoreItems(client, { userId: pickUser(), itemUris: candidateSets[i % candidateSets.length]! }, 5000);
    // What a ranking service does today: fetch the vector, map its candidates to rows, score them.
    const clientSide = async (i: number) => {
      const { embedding } = await getUserEmbedding(client, { userId: pickUser() }, 5000);
      const ids = candidateSets[i % candidateSets.length]!.map((uri) => bundle.vocabulary.idOf(uri));
      return bundle.itemTable.score(embedding!.vector, ids);
    };
    for (let i = 0; i < 100; i++) await Promise.all([server(i), clientSide(i)]); // warm-up
    const runs: Record<'server' | 'client', (LoadResult & { serverCpuMs: number; clientCpuMs: number })[]> = { server: [], client: [] };
    for (let r = 0; r < args.repeats; r++) {
      for (const [name, call] of [['server', server], ['client', clientSide]] as const) {
        const { result, selfMs, pidMs } = await withCpu([child.pid ?? 0], () => closedLoop(call, 16, seconds * 1000));
        runs[name].push({ ...result, serverCpuMs: pidMs[0]! / result.calls, clientCpuMs: selfMs / result.calls });
      }
    }
    const qps = (name: 'server' | 'client') => spread(runs[name].map((run) => run.qps));
    const cpu = (name: 'server' | 'client', side: 'serverCpuMs' | 'clientCpuMs') => (1000 * runs[name].reduce((sum, run) => sum + run[side], 0)) / runs[name].length;
    const sq = qps('server');
    const cq = qps('client');
    report.info(
      `ScoreItems(500) c=16: ${fmt(sq.median)} calls/s (CPU/call server ${cpu('server', 'serverCpuMs').toFixed(0)} µs, client ${cpu('server', 'clientCpuMs').toFixed(0)} µs); ` +
        `GetUserEmbedding + client scoring: ${fmt(cq.median)} calls/s (server ${cpu('client', 'serverCpuMs').toFixed(0)} µs, client ${cpu('client', 'clientCpuMs').toFixed(0)} µs)`,
    );
    report.figure({
      id: 'ranking.score_items_500.qps',
      label: 'ScoreItems with 500 candidates, calls/s at concurrency 16, vs GetUserEmbedding + the same 500 dot products in the client (one load generator, same run)',
      unit: 'calls/s',
      value: sq.median,
      spread: sq,
      ceiling: cq.median,
      ceilingSpread: cq,
      ceilingLabel: 'GetUserEmbedding + client scoring',
      note: `server CPU/call ${cpu('server', 'serverCpuMs').toFixed(0)} vs ${cpu('client', 'serverCpuMs').toFixed(0)} µs; client CPU/call ${cpu('server', 'clientCpuMs').toFixed(0)} vs ${cpu('client', 'clientCpuMs').toFixed(0)} µs`,
    });
    const rate = Math.max(10, Math.round(Math.min(sq.median, cq.median) / 2));
    const so = summarize((await openLoop(server, rate, seconds * 1000)).latenciesMs);
    const co = summarize((await openLoop(clientSide, rate, seconds * 1000)).latenciesMs);
    report.figure({
      id: 'ranking.score_items_500.p99_half_load',
      label: `ScoreItems(500) p99 at half the slower path's max (${rate} calls/s, open loop) vs GetUserEmbedding + client scoring at the same rate`,
      unit: 'ms',
      value: so.p99,
      ceiling: co.p99,
      ceilingLabel: 'GetUserEmbedding + client scoring p99',
      lowerIsBetter: true,
      note: `p50 ${so.p50.toFixed(2)} vs ${co.p50.toFixed(2)} ms`,
    });
  } finally {
    client.close();
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await deleteKeys(redis, prefix);
    redis.disconnect();
  }
}

report.finish(OUT_DIR);
