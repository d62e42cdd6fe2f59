import { createLogger, type LogLevel } from '../common/logger.js';
import { EventProducer } from '../consumers/event-producer.js';
import { createKafka, createProducer } from '../consumers/kafka.js';
import { startStreamJob } from '../consumers/stream-job.js';
import type { ExecutionProviderChoice } from '../model/inference-protocol.js';
import type { ItemScorer } from '../model/item-scorer.js';
import type { ItemVocabulary } from '../model/model-bundle.js';
import { batchGetUserEmbeddings, createEmbeddingClient } from '../serving/client.js';
import { startServingServer } from '../serving/server.js';
import { createCatalogue, type Catalogue } from '../simulator/catalogue.js';
import type { SimUser } from '../simulator/users.js';
import { World } from '../simulator/world.js';
import type { UserEmbedding__Output } from '../proto/generated/taste/v1/UserEmbedding.js';
import { kafkaFlags, logFlags, metricsFlags, modelFlags, redisFlags } from './common-flags.js';
import { servingObserver, streamJobObserver } from '../metrics/observers.js';
import { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { formatHelp, parseFlags } from './flags.js';
import { kafkaOptions, redisOptions, topicsOf } from './options.js';
import { simulationFlags } from './produce-command.js';
import { produceSimulatedTraffic } from './simulated-traffic.js';

const flags = {
  ...simulationFlags,
  duration: { type: 'integer', env: 'TASTE_DEMO_DURATION', default: 30, description: 'seconds of simulated traffic (0: until Ctrl-C)' },
  show: { type: 'integer', env: 'TASTE_DEMO_SHOW', default: 5, min: 1, description: 'users to show at the end' },
  'grpc-port': { type: 'integer', env: 'TASTE_GRPC_PORT', default: 50051, description: 'port of the embedding service (0: any free port)' },
  ...kafkaFlags,
  ...redisFlags,
  ...modelFlags,
  ...metricsFlags,
  ...logFlags,
} as const;

export const demoHelp = formatHelp(
  'taste demo [options]   (or: npm run demo -- [options])',
  'Runs the whole pipeline on simulated listeners: events → Kafka → consumers → ONNX model → Redis → gRPC,\nthen shows, for a few users, what a ranking service gets. Ctrl-C stops everything cleanly.',
  flags,
);

const say = (line = '') => process.stdout.write(line + '\n');

export async function runDemoCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    say(demoHelp);
    return 0;
  }
  const logger = createLogger(values['log-level'] === 'info' ? 'warn' : (values['log-level'] as LogLevel), { component: 'demo' });
  const topics = topicsOf(values);
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    say('\n[demo] stopping: finishing what is in flight (Ctrl-C again to force)');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const metrics = new PipelineMetrics();
  const metricsServer = values['metrics-port'] > 0 ? await startMetricsServer(metrics, { host: '127.0.0.1', port: values['metrics-port'] }) : undefined;
  say(`[demo] loading model ${values.model} and starting the stream job (topics ${topics.play}, ${topics.search})`);
  const job = await startStreamJob({
    modelDir: values.model,
    kafka: kafkaOptions(values, 'taste-demo'),
    redis: redisOptions(values, 'taste-demo'),
    topics,
    logger,
    keyPrefix: values['key-prefix'],
    executionProvider: values['execution-provider'] as ExecutionProviderChoice,
    inferenceWorkers: values['inference-workers'],
    ...(values['intra-op-threads'] > 0 ? { intraOpThreads: values['intra-op-threads'] } : {}),
    inferenceTimeoutMs: values['inference-timeout-ms'],
    topicPartitions: values['topic-partitions'],
    observer: streamJobObserver(metrics),
  });
  const { metadata } = job.bundle;
  const server = await startServingServer({
    service: {
      stores: [job.store],
      defaultModelVersion: metadata.modelVersion,
      observer: servingObserver(metrics),
    },
    redis: job.redis,
    host: '127.0.0.1',
    port: values['grpc-port'],
    logger,
  });
  const client = createEmbeddingClient(server.address);
  const kafka = createKafka(kafkaOptions(values, 'taste-demo-producer'), logger);
  const producer = createProducer(kafka, { idempotent: true });
  await producer.connect();
  try {
    say(`[demo] model ${metadata.modelVersion}: D=${metadata.embeddingDim}, window ${metadata.maxSeqLen} events, ${metadata.numItems} items${metadata.trained ? '' : ' (UNTRAINED: nearest items are arbitrary, see its MODEL_CARD.md)'}`);
    say(`[demo] gRPC EmbeddingService on ${server.address} (health + reflection), Redis ${values['redis-url']}, Kafka ${values.brokers}`);
    if (metricsServer) say(`[demo] metrics on http://127.0.0.1:${metricsServer.port}/metrics`);
    const catalogue = createCatalogue({ seed: values['catalogue-seed'], items: values.items });
    const known = catalogue.items.filter((item) => job.bundle.vocabulary.idOf(item.uri) > 1).length;
    if (known < catalogue.items.length * 0.9) {
      say(`[demo] warning: the model knows only ${known} of the ${catalogue.items.length} catalogue items; did you change --items or --catalogue-seed?`);
    }
    const world = new World({ seed: values.seed, users: values.users, catalogue, durationMs: Number.POSITIVE_INFINITY });
    say(`[demo] streaming ${values.users} simulated listeners at ${values.rate} events/s for ${values.duration || '∞'} s`);

    const progress = setInterval(() => {
      const stats = job.consumer.stats;
      say(`[demo] consumed ${stats.messages}, applied ${stats.applied}, duplicates ${stats.duplicates}, dead-lettered ${stats.deadLettered}`);
    }, 5000);
    const traffic = await produceSimulatedTraffic({
      world,
      producer: new EventProducer(producer, topics),
      ratePerSecond: values.rate,
      durationMs: values.duration * 1000,
      signal: stop.signal,
    });
    say(`[demo] produced ${traffic.sent} events for ${traffic.eventsByUser.size} users; waiting for the consumers to catch up`);
    const caughtUp = Date.now() + 20_000;
    while (job.consumer.stats.messages < traffic.sent && Date.now() < caughtUp && interrupts < 2) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    clearInterval(progress);

    const users = [...traffic.eventsByUser.keys()];
    const embeddings: UserEmbedding__Output[] = [];
    for (let start = 0; start < users.length; start += 500) {
      const response = await batchGetUserEmbeddings(client, { userIds: users.slice(start, start + 500) }, 5000);
      for (const result of response.results) if (result.embedding) embeddings.push(result.embedding);
    }
    const freshness = embeddings.map((e) => e.updatedTimeMs - e.lastEventTimeMs).sort((a, b) => a - b);
    const at = (q: number) => freshness[Math.min(freshness.length - 1, Math.floor(q * freshness.length))] ?? NaN;
    say('');
    say(`Embeddings served: ${embeddings.length} of ${users.length} users; consumed ${job.consumer.stats.messages} events, dead-lettered ${job.consumer.stats.deadLettered}.`);
    say(`Freshness (newest event time → embedding written): p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${freshness[freshness.length - 1] ?? NaN} ms`);
    say('');
    const byActivity = [...traffic.eventsByUser].sort((a, b) => b[1] - a[1]).map(([user]) => user);
    const shown = pickUsers(byActivity, values.show);
    const response = await batchGetUserEmbeddings(client, { userIds: shown }, 5000);
    const usersById = new Map(world.users.map((user) => [user.userId, user]));
    for (const result of response.results) {
      describeUser(result.userId, result.embedding ?? undefined, usersById.get(result.userId), catalogue, job.bundle.itemTable, job.bundle.vocabulary);
    }
    if (metricsServer) await printMetricsExcerpt(metricsServer.port);
  } finally {
    await metricsServer?.close();
    client.close();
    await producer.disconnect().catch(() => undefined);
    await server.close();
    await job.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say('[demo] stopped cleanly');
  return 0;
}

/** The heaviest listeners and a couple of light ones, so both ends of the Zipf curve show. */
function pickUsers(byActivity: string[], count: number): string[] {
  const light = Math.min(2, Math.floor(count / 2));
  const heavy = byActivity.slice(0, count - light);
  const lightUsers = byActivity.slice(Math.floor(byActivity.length * 0.8)).slice(0, light);
  return [...new Set([...heavy, ...lightUsers])];
}

function describeUser(
  userId: string,
  embedding: UserEmbedding__Output | undefined,
  user: SimUser | undefined,
  catalogue: Catalogue,
  itemTable: ItemScorer,
  vocabulary: ItemVocabulary,
): void {
  if (!embedding) {
    say(`${userId}: no embedding yet`);
    return;
  }
  const tastes = user?.tastes.map((taste) => `${taste.genre} ${taste.weight.toFixed(2)}`).join(', ') ?? '?';
  say(`${userId}  model ${embedding.modelVersion}  events in window ${embedding.eventsInWindow}  freshness ${embedding.updatedTimeMs - embedding.lastEventTimeMs} ms`);
  say(`  true taste (simulator): ${tastes}`);
  const nearest = itemTable.topK(embedding.vector, 5);
  const labels = nearest.map(({ id, score }) => {
    const item = catalogue.itemByUri(vocabulary.uriOf(id) ?? '');
    return item ? `${item.artist} – ${item.title} [${item.genre}] ${score.toFixed(2)}` : `${vocabulary.uriOf(id)} ${score.toFixed(2)}`;
  });
  say(`  nearest items: ${labels.join('; ')}`);
  say('');
}

/** The lines of /metrics an operator looks at first, fetched over HTTP like Prometheus does. */
async function printMetricsExcerpt(port: number): Promise<void> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const wanted = /^taste_(events_\w+_total|grpc_requests_total|write_conflicts_total|consumer_lag|(freshness|inference|grpc|redis)_seconds_(count|sum)|freshness_seconds_bucket\{le="(0.1|0.25|1)"\})/;
  say('/metrics excerpt:');
  for (const line of text.split('\n')) if (wanted.test(line)) say(`  ${line}`);
  say('');
}
