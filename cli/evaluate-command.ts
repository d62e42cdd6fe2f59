import { writeFile } from 'node:fs/promises';
import { createLogger, type LogLevel } from '../common/logger.js';
import { isPollTimeout, pollUntil } from '../common/poll.js';
import { EventProducer } from '../consumers/event-producer.js';
import { consumerGroupLag, createKafka, createProducer, ensureTopics } from '../consumers/kafka.js';
import { readEvaluationSet } from '../evaluation/evaluation-set.js';
import { comparePipelineToOffline, type ComparisonReport, type ProtocolComparison } from '../evaluation/pipeline-comparison.js';
import { fetchEmbeddings, replayEvents } from '../evaluation/pipeline-io.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { createEmbeddingClient } from '../serving/client.js';
import { readQualityTotals, HOUR_MS, hourStartMs, type QualityTotals } from '../featurestore/live-quality.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { compareOnlineToOffline, formatOnlineComparison, heldOutPlays, type OnlineComparison, totalsBetween } from '../evaluation/online-quality.js';
import { kafkaFlags, logFlags, redisFlags } from './common-flags.js';
import { formatHelp, parseFlags, UsageError } from './flags.js';
import { kafkaOptions, redisOptions, topicsOf } from './options.js';

const flags = {
  set: { type: 'string', env: 'TASTE_EVAL_SET', description: 'evaluation directory written by python -m taste_training.pipeline_eval (required)' },
  model: { type: 'string', env: 'TASTE_MODEL_DIR', default: 'models/default', description: 'model directory: its item table ranks; must be the version the set was built for' },
  ...kafkaFlags,
  'group-id': { type: 'string', env: 'TASTE_GROUP_ID', default: 'taste', description: 'consumer group of the running taste consume (lag 0 = every event stored)' },
  'grpc-address': { type: 'string', env: 'TASTE_GRPC_ADDRESS', default: '127.0.0.1:50051', description: 'the running taste serve' },
  replay: { type: 'boolean', env: 'TASTE_EVAL_REPLAY', default: true, description: 'produce the events (off: only wait, fetch and compare)' },
  'wait-timeout': { type: 'integer', env: 'TASTE_EVAL_WAIT_TIMEOUT', default: 1800, min: 1, description: 'seconds to wait for the consumers to reach lag 0' },
  'embedding-tolerance': { type: 'string', env: 'TASTE_EVAL_EMBEDDING_TOLERANCE', default: '1e-4', description: 'largest accepted |served - offline| per embedding component' },
  'max-rank-changes': { type: 'integer', env: 'TASTE_EVAL_MAX_RANK_CHANGES', default: 2, description: 'users whose target rank may differ from offline (float noise)' },
  online: {
    type: 'boolean',
    env: 'TASTE_EVAL_ONLINE',
    default: false,
    description:
      'then play each user\'s held-out item and compare the live quality the consumer adds to Redis (it must run with --quality-sample-rate 1, same --redis-url and --key-prefix) with the offline metrics; for sets that do not mask the history (sim)',
  },
  ...redisFlags,
  report: { type: 'string', env: 'TASTE_EVAL_REPORT', description: 'also write the full comparison as JSON here' },
  ...logFlags,
} as const;

export const evaluateHelp = `${formatHelp(
  'taste evaluate --set <dir> [options]',
  [
    'Proves the running pipeline computes what training measured: replays each test user\'s history (the events of',
    'the evaluation set) into Kafka, waits until the consumer group has stored them all, fetches the embeddings',
    'over gRPC, ranks the held-out items with the model\'s item table and compares with the offline metrics.',
    'Needs taste consume (same topics, --group-id, --model, and --min-event-time at or before the set\'s oldest',
    'event) and taste serve running. The histories are appended to the topics, so each run needs fresh topics, group',
    'and key prefix: scripts/pipeline-eval.sh starts everything that way.',
  ].join('\n'),
  flags,
)}

Exit status: 0 the pipeline matches offline, 1 it does not (reasons printed) or an error, 2 bad usage.`;

export async function runEvaluateCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    console.log(evaluateHelp);
    return 0;
  }
  if (!values.set) throw new UsageError('--set is required');
  const embeddingTolerance = Number(values['embedding-tolerance']);
  if (!(embeddingTolerance >= 0)) throw new UsageError(`--embedding-tolerance must be a number >= 0, got "${values['embedding-tolerance']}"`);
  const logger = createLogger(values['log-level'] as LogLevel, { component: 'evaluate' });

  const set = await readEvaluationSet(values.set);
  const bundle = await loadModelBundle(values.model);
  if (bundle.metadata.modelVersion !== set.summary.model_version) {
    throw new UsageError(`--model ${values.model} is version ${bundle.metadata.modelVersion}, the set was built for ${set.summary.model_version}`);
  }
  if (values.online && set.cases.some((c) => c.mask.length > 0)) {
    throw new UsageError(`--online: live quality ranks among all items, the history not masked, but this set (${set.summary.dataset}) masks each user's earlier items; use a set that does not (sim)`);
  }
  const topics = topicsOf(values);
  const kafka = createKafka(kafkaOptions(values, 'taste-evaluate'), logger);
  const started = Date.now();
  if (values.replay) {
    await ensureTopics(kafka, [
      { topic: topics.play, partitions: values['topic-partitions'] },
      { topic: topics.search, partitions: values['topic-partitions'] },
    ]);
    const producer = createProducer(kafka, { idempotent: true });
    await producer.connect();
    try {
      let lastReport = 0;
      const sent = await replayEvents(set.eventsPath, new EventProducer(producer, topics), (count) => {
        if (Date.now() - lastReport < 5000) return;
        lastReport = Date.now();
        logger.info('replaying', { sent: count, of: set.summary.events });
      });
      logger.info('replayed', { events: sent, users: set.cases.length, seconds: (Date.now() - started) / 1000 });
    } finally {
      await producer.disconnect();
    }
  }
  const lag = await waitForLagZero(() => consumerGroupLag(kafka, values['group-id'], [topics.play, topics.search]), values['wait-timeout'] * 1000, (current) =>
    logger.info('waiting for the consumers', { lag: current }),
  );
  if (lag !== 0) {
    const left = Number.isFinite(lag) ? `still has ${lag} records to process` : 'could not be asked for its offsets';
    console.error(`taste evaluate: the consumer group ${values['group-id']} ${left} after ${values['wait-timeout']} s`);
    return 1;
  }
  const stored = Date.now();
  logger.info('all events stored', { seconds: (stored - started) / 1000 });

  const client = createEmbeddingClient(values['grpc-address']);
  let served;
  try {
    served = await fetchEmbeddings(client, set.cases.map((c) => c.userId), set.summary.model_version);
  } finally {
    client.close();
  }
  const report = comparePipelineToOffline(set, served, bundle.itemTable, { embeddingTolerance, maxRankChanges: values['max-rank-changes'] });
  const timing = { replayAndStoreSeconds: (stored - started) / 1000, fetchSeconds: (Date.now() - stored) / 1000 };
  console.log(formatReport(set.summary.dataset, set.summary.model_version, report, timing));

  let online: OnlineComparison | undefined;
  if (values.online) {
    const redis = createRedisClient(redisOptions(values, 'taste-evaluate'));
    const producer = createProducer(kafka, { idempotent: true });
    try {
      await waitForRedis(redis);
      await producer.connect();
      const version = set.summary.model_version;
      // Every bucket since the start, read the same way both times, so an hour turning in between changes nothing.
      const totals = async (): Promise<QualityTotals> => {
        const now = Date.now();
        const hours = (hourStartMs(now) - hourStartMs(started)) / HOUR_MS + 1;
        return (await readQualityTotals(redis, values['key-prefix'], [version], now, hours)).get(version)!;
      };
      // The histories' own plays were scored too; only what the held-out plays add counts.
      const before = await totals();
      await new EventProducer(producer, topics).send(await heldOutPlays(set, bundle.vocabulary));
      const lagAfter = await waitForLagZero(() => consumerGroupLag(kafka, values['group-id'], [topics.play, topics.search]), values['wait-timeout'] * 1000, (current) =>
        logger.info('waiting for the held-out plays', { lag: current }),
      );
      if (lagAfter !== 0) {
        console.error(`taste evaluate: the consumer group ${values['group-id']} did not take the held-out plays within ${values['wait-timeout']} s`);
        return 1;
      }
      online = compareOnlineToOffline(totalsBetween(before, await totals()), report.full.offline, set.cases.length, values['max-rank-changes']);
      console.log(formatOnlineComparison(online));
    } finally {
      await producer.disconnect();
      redis.disconnect();
    }
  }
  if (values.report) {
    await writeFile(values.report, `${JSON.stringify({ dataset: set.summary.dataset, modelVersion: set.summary.model_version, events: set.summary.events, setCommand: set.summary.command, timing, ...report, ...(online ? { online } : {}) }, null, 1)}\n`);
  }
  return report.passed && (online?.passed ?? true) ? 0 : 1;
}

/** The group's lag once it is 0, or the last lag seen when `timeoutMs` passes first (Infinity: Kafka never answered). */
async function waitForLagZero(lagOf: () => Promise<number>, timeoutMs: number, onWaiting: (lag: number) => void): Promise<number> {
  let lag = Number.POSITIVE_INFINITY;
  let lastReport = 0;
  const lagZero = async () => {
    // A broker moment (coordinator loading, leader moving) is not an answer: ask again.
    lag = await lagOf().catch(() => Number.POSITIVE_INFINITY);
    if (lag === 0) return lag;
    if (Date.now() - lastReport >= 5000) {
      lastReport = Date.now();
      onWaiting(lag);
    }
    return undefined;
  };
  return pollUntil(lagZero, { what: 'consumer group lag 0', timeoutMs, intervalMs: 500 }).catch((error: unknown) => {
    if (isPollTimeout(error)) return lag;
    throw error;
  });
}

const COLUMNS = ['HR@5', 'HR@10', 'NDCG@5', 'NDCG@10', 'MRR'];

function rows(name: string, comparison: ProtocolComparison): string[] {
  const row = (label: string, metrics: Record<string, number>) => `  ${label.padEnd(34)}${COLUMNS.map((c) => (metrics[c] ?? Number.NaN).toFixed(4).padStart(9)).join('')}`;
  const lines = [`${name} ranking (${comparison.pipeline['users']} users)`, `  ${''.padEnd(34)}${COLUMNS.map((c) => c.padStart(9)).join('')}`];
  lines.push(row('through the pipeline (Kafka→gRPC)', comparison.pipeline));
  lines.push(row('offline (onnxruntime, Python)', comparison.offline));
  if (comparison.trainingRun) lines.push(row('training run (PyTorch)', comparison.trainingRun));
  lines.push(`  rank changes vs offline: ${comparison.rankChanges}; largest metric difference: ${comparison.maxMetricDiff.toFixed(6)}`);
  return lines;
}

export function formatReport(dataset: string, modelVersion: string, report: ComparisonReport, timing: { replayAndStoreSeconds: number; fetchSeconds: number }): string {
  const lines = [`Pipeline evaluation: ${dataset}, model ${modelVersion}, ${report.users} users`];
  lines.push(...rows('full', report.full));
  if (report.sampled) lines.push(...rows('sampled', report.sampled));
  lines.push(`served vs offline embeddings: max abs diff ${report.maxEmbeddingDiff.toExponential(2)}; users missing ${report.missing.length}; wrong window length ${report.windowMismatches.length}`);
  lines.push(`replay to all stored: ${timing.replayAndStoreSeconds.toFixed(1)} s; fetch: ${timing.fetchSeconds.toFixed(1)} s`);
  lines.push(report.passed ? 'PASS: the pipeline computes what training measured' : `FAIL: ${report.reasons.join('; ')}`);
  return lines.join('\n');
}
