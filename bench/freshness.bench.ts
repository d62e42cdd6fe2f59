// Freshness: event time → embedding readable, at half the max sustained ingest rate measured by
// ingest.bench.ts (read from its JSON, or --max-rate, or measured here on a small topic), with
// simulated traffic produced by a separate process. Two measures: (1) stored fields, upd − last
// for every user written during the run; (2) a direct probe: a tagged event produced for a probe
// user, GetUserEmbedding (the real `taste serve`, separate process) polled every 5 ms until it
// reflects the tag. Beside the floor: a kafkajs no-op consumer's event time → received latency on
// the same kind of traffic at the same rate.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventProducer } from '../consumers/event-producer.js';
import { createProducer } from '../consumers/kafka.js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { StateFields } from '../featurestore/keys.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { decodePlayEvent, decodeSearchEvent } from '../proto/event-codec.js';
import { createEmbeddingClient, getUserEmbedding } from '../serving/client.js';
import { benchArgs, KAFKA_BROKERS, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, REPO_ROOT, unique } from './lib/env.js';
import { consumeAll } from './lib/kafka-ceiling.js';
import { jobIntraOpThreads, jobOverridesFromArgs, runPipeline, startBenchJob } from './lib/pipeline.js';
import { logHistogram, Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteKeys, deleteTopics, freePort, seedUsers } from './lib/services.js';
import { fmt, sleep, spread, summarize } from './lib/stats.js';
import { benchWorld, produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({
  'max-rate': { type: 'string' },
  users: { type: 'string' },
  seconds: { type: 'string' },
  'load-fraction': { type: 'string' },
  'burst-factor': { type: 'string' },
  'inference-workers': { type: 'string' },
  'chunk-size': { type: 'string' },
  'partitions-concurrently': { type: 'string' },
  'intra-op-threads': { type: 'string' },
  'no-compare': { type: 'boolean' },
});
const report = new Report('freshness');
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const kafka = benchKafka();
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
await waitForRedis(redis);

// The max sustained rate: from this run's ingest.json, or --max-rate, or measured here.
const ingestJson = OUT_DIR ? join(OUT_DIR, 'ingest.json') : '';
const fromIngest = ingestJson && existsSync(ingestJson) ? (JSON.parse(readFileSync(ingestJson, 'utf8')) as { context: { maxEventsPerS?: number; settings?: { users?: number } } }).context : undefined;
const U = numberArg(args, 'users', fromIngest?.settings?.users ?? 10_000);
let maxRate = numberArg(args, 'max-rate', fromIngest?.maxEventsPerS ?? Number.NaN);
let maxSource = args.values['max-rate'] ? '--max-rate' : fromIngest?.maxEventsPerS ? `ingest.json (${ingestJson})` : '';
if (!Number.isFinite(maxRate)) {
  const topics = benchTopics();
  await createTopics(kafka, topics, 4);
  const traffic = await produceWorldEvents(kafka, topics, { users: U, count: 10_000 });
  const run = await runPipeline({ bundle, redis, topics, expected: traffic.sent, seedUserIds: [...traffic.eventsByUser.keys()] });
  await deleteTopics(kafka, topics);
  maxRate = run.eventsPerS;
  maxSource = 'measured here (10k events, 1 run)';
}
const fraction = numberArg(args, 'load-fraction', 0.5);
const rate = Math.max(1, Math.round(fraction * maxRate));
// --long adds a lighter load, to show how freshness depends on load.
const extraFractions = args.long && !args.values['load-fraction'] ? [0.25] : [];
// Also the main load with 1 intra-op thread (a candidate default on small machines), unless the
// pool already has 1 thread or --no-compare.
const argOverrides = jobOverridesFromArgs(args);
const compareIntra1 = !args.values['no-compare'] && !args.values['intra-op-threads'] && jobIntraOpThreads(argOverrides) > 1;
const seconds = numberArg(args, 'seconds', args.long ? 60 : 10);
const burstFactor = numberArg(args, 'burst-factor', 1);
report.info(`max sustained ${fmt(maxRate)} events/s from ${maxSource}; load ${rate} events/s (${fraction} × max) for ${seconds} s, ${U} users${burstFactor !== 1 ? `, bursts ×${burstFactor} 1 s in 5` : ''}`);

function startProducer(topics: { play: string; search: string }, rate: number): { done: Promise<{ sent: number; users: number }> } {
  const child = spawn(
    process.execPath,
    [`${REPO_ROOT}dist/bench/producer-child.js`, '--plays', topics.play, '--searches', topics.search, '--users', String(U), '--rate', String(rate), '--seconds', String(seconds), '--burst-factor', String(burstFactor)],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(',') } },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return {
    done: new Promise((resolve, reject) =>
      child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`producer-child exited ${code}`)))),
    ),
  };
}

// Phase A: the floor — a kafkajs no-op consumer's event time → received latency at the same rate.
const floorTopics = benchTopics();
await createTopics(kafka, floorTopics, 4);
const floorLatencies: number[] = [];
let floorSent = 0;
try {
  const producing = (async () => {
    await sleep(2000); // let the consumer join first
    const { sent } = await startProducer(floorTopics, rate).done;
    floorSent = sent;
  })();
  await Promise.all([
    producing,
    (async () => {
      // consumeAll finishes once `expected` messages arrived; expected is unknown until the
      // producer ends, so count against a large number and stop when the producer is done.
      await consumeAll(kafka, floorTopics, Number.MAX_SAFE_INTEGER, {
        timeoutMs: (seconds + 15) * 1000,
        work: ({ batch }) => {
          const now = Date.now();
          for (const message of batch.messages) {
            if (!message.value) continue;
            const event = batch.topic === floorTopics.play ? decodePlayEvent(message.value) : decodeSearchEvent(message.value);
            floorLatencies.push(now - event.eventTimeMs);
          }
        },
      }).catch((error: Error) => {
        if (!/before the timeout/.test(error.message)) throw error;
      });
    })(),
  ]);
} finally {
  await deleteTopics(kafka, floorTopics);
}
const floor = summarize(floorLatencies);
report.info(`kafkajs no-op floor: ${floorLatencies.length} of ${floorSent} events, event time → received p50 ${floor.p50} p99 ${floor.p99} max ${floor.max} ms`);

// Phase B: the stream job + taste serve + probe, at each load.
async function measureAt(rate: number, jobOverrides: { intraOpThreads?: number } = {}): Promise<{ stored: number[]; probe: number[]; probeTimeouts: number; produced: { sent: number; users: number }; lagMs: number }> {
  const topics = benchTopics();
  await createTopics(kafka, topics, 4);
  const keyPrefix = unique('fresh');
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix });
  // The producer child plays the same world (same seed) from its start: the users it will touch
  // are those of its first events, so only they need a seeded history.
  const world = benchWorld(U);
  const touched = new Set<string>();
  const source = world.events();
  for (let i = 0; i < Math.ceil(rate * seconds * 1.5) + 1000; i++) {
    const next = source.next();
    if (next.done) break;
    touched.add(next.value.event.userId);
  }
  const userIds = [...touched];
  const probeUsers = Array.from({ length: 16 }, (_, i) => `probe-${i}`);
  await seedUsers(store, [...userIds, ...probeUsers], metadata, { beforeMs: Date.now() - 86_400_000 });
  const job = await startBenchJob(bundle, topics, keyPrefix, { ...argOverrides, ...jobOverrides });
  const port = await freePort();
  const server = spawn(
    process.execPath,
    [`${REPO_ROOT}dist/cli/main.js`, 'serve', '--host', '127.0.0.1', '--port', String(port), '--redis-url', REDIS_URL, '--key-prefix', keyPrefix, '--model', MODEL_DIR, '--log-level', 'warn'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const client = createEmbeddingClient(`127.0.0.1:${port}`);
  const probeProducer = createProducer(kafka, { idempotent: true });
  await probeProducer.connect();
  const probeEvents = new EventProducer(probeProducer, topics);
  const itemUri = world.catalogue.items[0]!.uri;
  const probe: number[] = [];
  let probeTimeouts = 0;
  const runStart = Date.now();
  let produced = { sent: 0, users: 0 };
  let lagMs = Number.NaN;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await getUserEmbedding(client, { userId: probeUsers[0]! }, 1000);
        break;
      } catch (error) {
        if (attempt > 100) throw new Error(`taste serve did not answer: ${(error as Error).message}`);
        await sleep(100);
      }
    }
    const producing = startProducer(topics, rate).done;
    let producerDone = false;
    let producerEnd = Number.NaN;
    void producing.then(
      () => ((producerDone = true), (producerEnd = Date.now())),
      () => (producerDone = true),
    );
    await sleep(2000); // past start-up
    for (let i = 0; !producerDone; i++) {
      const userId = probeUsers[i % probeUsers.length]!;
      const tag = Date.now();
      await probeEvents.send([
        {
          kind: 'play',
          event: { userId, itemUri, itemKind: 'ITEM_KIND_TRACK', eventTimeMs: tag, msPlayed: 200_000, itemDurationMs: 200_000, context: 'PLAY_CONTEXT_PLAYLIST', endReason: 'END_REASON_COMPLETED' },
        },
      ]);
      for (;;) {
        const response = await getUserEmbedding(client, { userId }, 1000).catch(() => undefined);
        if (response?.embedding && response.embedding.lastEventTimeMs >= tag) {
          probe.push(Date.now() - tag);
          break;
        }
        if (Date.now() - tag > 10_000) {
          probeTimeouts++;
          break;
        }
        await sleep(5);
      }
      await sleep(100 + Math.random() * 200);
    }
    produced = await producing;
    const expected = produced.sent + probe.length + probeTimeouts;
    const deadline = Date.now() + 120_000;
    while (job.consumer.stats.messages < expected && Date.now() < deadline) await sleep(20);
    lagMs = Date.now() - producerEnd;
    report.info(
      `at ${rate} events/s: produced ${produced.sent} events for ${produced.users} users; consumer at ${job.consumer.stats.messages} of ${expected} ` +
        `(${job.consumer.stats.deadLettered} dead-lettered), caught up ${lagMs} ms after the producer stopped${lagMs > 1000 ? ' (FELL BEHIND: this load is not sustainable here now)' : ''}`,
    );
  } finally {
    client.close();
    server.kill('SIGTERM');
    await probeProducer.disconnect();
    await job.stop();
  }
  // Stored fields: upd − last for every user written during the run, after its first 2 s.
  const stored: number[] = [];
  try {
    for (let start = 0; start < userIds.length; start += 1000) {
      const rows = await Promise.all(userIds.slice(start, start + 1000).map((u) => redis.hmget(store.key(u), StateFields.updatedMs, StateFields.lastEventMs)));
      for (const [upd, last] of rows) {
        const updated = Number(upd);
        // Past start-up, as the probe (which starts 2 s into the run).
        if (updated >= runStart + 2000) stored.push(updated - Number(last));
      }
    }
  } finally {
    await deleteKeys(redis, keyPrefix);
    await deleteTopics(kafka, topics);
  }
  return { stored, probe, probeTimeouts, produced, lagMs };
}

// Every latency of the main load's runs, for the histogram (bench/figures/freshness.png).
const mainLoad = { stored: [] as number[], probe: [] as number[], rate: 0 };
try {
  const plan = [
    { f: fraction, tag: '', overrides: {} },
    ...extraFractions.map((f) => ({ f, tag: `.at${f}`, overrides: {} })),
    ...(compareIntra1 ? [{ f: fraction, tag: '.intra1', overrides: { intraOpThreads: 1 } }] : []),
  ];
  for (const { f, tag, overrides } of plan) {
    const at = Math.max(1, Math.round(f * maxRate));
    if (tag) report.info(`--- ${tag.slice(1)}: ${f} × max${overrides.intraOpThreads ? `, ${overrides.intraOpThreads} intra-op thread` : ''}`);
    // The main load runs --repeats times: one 10 s run's p99 swings by 2x here from run to run.
    const runs = tag === '' ? args.repeats : 1;
    const results = [];
    for (let r = 0; r < runs; r++) {
      const result = await measureAt(at, overrides);
      const storedS = summarize(result.stored);
      const probeS = summarize(result.probe);
      report.info(`  stored fields (upd − last), ${result.stored.length} users written: p50 ${storedS.p50} p99 ${storedS.p99} max ${storedS.max} ms`);
      report.info(`  probe (tag produced → GetUserEmbedding shows it, 5 ms polling): ${result.probe.length} probes, ${result.probeTimeouts} timed out: p50 ${probeS.p50} p99 ${probeS.p99} max ${probeS.max} ms`);
      report.context(`run${tag}${runs > 1 ? `.${r + 1}` : ''}`, { rate: at, fraction: f, produced: result.produced, lagMs: result.lagMs, stored: storedS, probe: { ...probeS, timeouts: result.probeTimeouts } });
      results.push({ stored: storedS, probe: probeS, lagMs: result.lagMs });
      if (tag === '') {
        // A loop, not push(...): the long run writes more users than a call takes arguments.
        for (const value of result.stored) mainLoad.stored.push(value);
        for (const value of result.probe) mainLoad.probe.push(value);
        mainLoad.rate = at;
      }
    }
    for (const name of ['stored', 'probe'] as const) {
      const p99 = spread(results.map((x) => x[name].p99));
      const p50 = spread(results.map((x) => x[name].p50));
      report.figure({
        id: `freshness${tag}.${name}.p99`,
        label: `freshness p99 at ${f} × max load (${at} events/s)${overrides.intraOpThreads ? `, ${overrides.intraOpThreads} intra-op thread` : ''}, ${name === 'stored' ? 'stored upd − last, every user written' : 'direct probe via GetUserEmbedding'}`,
        unit: 'ms',
        value: p99.median,
        ...(runs > 1 ? { spread: p99 } : {}),
        ceiling: floor.p99,
        ceilingLabel: 'kafkajs no-op event→received p99',
        lowerIsBetter: true,
        ...(tag === '' ? { goal: { kind: 'max-value', target: 250 } as const } : {}),
        note: `per run: ${results.map((x) => `p50 ${x[name].p50} p99 ${x[name].p99} max ${x[name].max} ms (n=${x[name].count}), caught up ${x.lagMs} ms after the producer stopped`).join('; ')}`,
      });
      report.figure({
        id: `freshness${tag}.${name}.p50`,
        label: `freshness p50 at ${f} × max load${overrides.intraOpThreads ? `, ${overrides.intraOpThreads} intra-op thread` : ''}, ${name}`,
        unit: 'ms',
        value: p50.median,
        ...(runs > 1 ? { spread: p50 } : {}),
        ceiling: floor.p50,
        ceilingLabel: 'kafkajs no-op event→received p50',
        lowerIsBetter: true,
      });
    }
  }
} finally {
  redis.disconnect();
}
report.plot({
  id: 'freshness',
  kind: 'histogram',
  title: 'Freshness: event time to embedding readable',
  caption: `${mainLoad.rate} events/s (${fraction} × the max sustained rate), ${args.repeats} runs of ${seconds} s, ${fmt(U)} simulated users; floor: a kafkajs no-op consumer at the same rate`,
  xLabel: 'milliseconds (log scale)',
  xLog: true,
  ...logHistogram(
    [
      { label: 'stored: upd − last, every user written', values: mainLoad.stored },
      { label: 'probe: GetUserEmbedding shows the event', values: mainLoad.probe },
      { label: 'floor: kafkajs no-op, event → received', values: floorLatencies },
    ],
    { min: 1, max: 10_000, bins: 48 },
  ),
});
report.context('settings', { rate, maxRate, maxSource, seconds, users: U, burstFactor });
report.context('floor', floor);
report.finish(OUT_DIR);
