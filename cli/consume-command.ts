import { createLogger, type LogLevel } from '../common/logger.js';
import { DEFAULT_QUALITY_SAMPLE_RATE, startStreamJob, type StreamJobObserver } from '../consumers/stream-job.js';
import type { ExecutionProviderChoice } from '../model/inference-protocol.js';
import { kafkaFlags, logFlags, metricsFlags, modelFlags, redisFlags } from './common-flags.js';
import { streamJobObserver } from '../metrics/observers.js';
import { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { formatHelp, parseFlags, UsageError } from './flags.js';
import { kafkaOptions, parseTime, redisOptions, ShutdownSignal, topicsOf } from './options.js';

const flags = {
  ...kafkaFlags,
  ...redisFlags,
  ...modelFlags,
  'shadow-model': {
    type: 'string',
    multiple: true,
    env: 'TASTE_SHADOW_MODEL_DIR',
    description:
      'a shadow model directory, run beside --model from the same Kafka read and written under its own version in the same atomic step per user (docs/rollout.md); repeatable. One that cannot load refuses the start; one whose inference fails at run time is suspended (metric taste_shadow_running, /readyz detail) while the primary goes on',
  },
  'quality-sample-rate': {
    type: 'number',
    env: 'TASTE_QUALITY_SAMPLE_RATE',
    default: DEFAULT_QUALITY_SAMPLE_RATE,
    min: 0,
    max: 1,
    description:
      'share of plays ranked, before they are applied, against the embedding of --model and of each --shadow-model: live HR@10, NDCG@10 and MRR per version (metrics taste_live_quality_*, taste rollout status; docs/rollout.md). 0 turns it off',
  },
  'group-id': { type: 'string', env: 'TASTE_GROUP_ID', default: 'taste', description: 'Kafka consumer group' },
  'partitions-concurrently': { type: 'integer', env: 'TASTE_PARTITIONS_CONCURRENTLY', default: 2, min: 1, description: 'partitions processed at once by this member' },
  'session-timeout-ms': { type: 'integer', env: 'TASTE_SESSION_TIMEOUT_MS', default: 30000, min: 6000, description: 'Kafka group session timeout: how soon a dead member\'s partitions move' },
  'stall-timeout-ms': { type: 'integer', env: 'TASTE_STALL_TIMEOUT_MS', default: 120000, min: 1000, description: 'Longest the Kafka consumer may show no sign of life (fetch, batch, group join) outside a step before it is replaced' },
  'create-topics': { type: 'boolean', env: 'TASTE_CREATE_TOPICS', default: true, description: 'create missing topics at start (false where topics are managed elsewhere)' },
  'min-event-time': { type: 'string', env: 'TASTE_MIN_EVENT_TIME', default: '2005-01-01T00:00:00Z', description: 'oldest event time accepted (older events are dead-lettered; lower it to replay old history)' },
  'tombstone-lifetime': { type: 'string', env: 'TASTE_TOMBSTONE_LIFETIME', default: 'retention', description: 'how long an erasure\'s tombstone outlives its request time: "retention" (the event topics\' longest retention + 7 days; forever if they keep records forever or compact), "forever", or a number of ms (docs/erasure.md)' },
  'chunk-size': { type: 'integer', env: 'TASTE_CHUNK_SIZE', default: 500, min: 1, description: 'records applied (and committed) per step' },
  ...metricsFlags,
  ...logFlags,
} as const;

export const consumeHelp = formatHelp(
  'taste consume [options]',
  'The streaming job: consumes play and search events, updates each user\'s sequence and embedding in Redis.\nStops cleanly on SIGINT/SIGTERM (in-flight work is finished or left uncommitted).',
  flags,
);

export async function runConsumeCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    console.log(consumeHelp);
    return 0;
  }
  const minEventTimeMs = parseTime(values['min-event-time'], '--min-event-time');
  const tombstoneLifetimeMs = parseTombstoneLifetime(values['tombstone-lifetime']);
  const logger = createLogger(values['log-level'] as LogLevel, { component: 'consumer' });
  const shutdown = new ShutdownSignal((message) => logger.info(message));
  const metrics = new PipelineMetrics();
  const metricsServer = values['metrics-port'] > 0 ? await startMetricsServer(metrics, { port: values['metrics-port'] }) : undefined;
  const job = await startStreamJob({
    modelDir: values.model,
    shadowModelDirs: values['shadow-model'],
    qualitySampleRate: values['quality-sample-rate'],
    kafka: kafkaOptions(values, 'taste-consumer'),
    redis: redisOptions(values, 'taste-consumer'),
    topics: topicsOf(values),
    logger,
    groupId: values['group-id'],
    keyPrefix: values['key-prefix'],
    executionProvider: values['execution-provider'] as ExecutionProviderChoice,
    inferenceWorkers: values['inference-workers'],
    ...(values['intra-op-threads'] > 0 ? { intraOpThreads: values['intra-op-threads'] } : {}),
    inferenceTimeoutMs: values['inference-timeout-ms'],
    topicPartitions: values['topic-partitions'],
    createTopics: values['create-topics'],
    partitionsConsumedConcurrently: values['partitions-concurrently'],
    chunkSize: values['chunk-size'],
    sessionTimeoutMs: values['session-timeout-ms'],
    stallTimeoutMs: values['stall-timeout-ms'],
    ...(tombstoneLifetimeMs === undefined ? {} : { tombstoneLifetimeMs }),
    minEventTimeMs,
    observer: withShadowReadiness(streamJobObserver(metrics), (lines) => metricsServer?.setReadinessDetail(lines)),
    // Ready while this member is in its group with an inference worker up.
    onReadinessChange: (ready) => metricsServer?.setReady(ready),
  });
  metrics.runsModel(job.bundle.metadata.modelVersion, job.bundle.metadata.kind);
  for (const shadow of job.shadows) metrics.runsShadow(shadow.bundle.metadata.modelVersion, shadow.bundle.metadata.kind);
  if (metricsServer) logger.info('metrics', { url: `http://0.0.0.0:${metricsServer.port}/metrics` });
  const progress = setInterval(() => logger.info('progress', { ...job.consumer.stats }), 10_000);
  progress.unref();
  await shutdown.requested;
  clearInterval(progress);
  metricsServer?.setReady(false);
  await shutdown.stopWith(async () => {
    await job.stop();
    await metricsServer?.close();
  });
  logger.info('stopped', { ...job.consumer.stats });
  return 0;
}

/** --tombstone-lifetime: undefined for "retention" (derived by the job), 'forever', or whole ms. */
function parseTombstoneLifetime(text: string): number | 'forever' | undefined {
  if (text === 'retention') return undefined;
  if (text === 'forever') return 'forever';
  if (/^[1-9][0-9]*$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  throw new UsageError(`--tombstone-lifetime must be "retention", "forever" or a positive number of ms, got "${text}"`);
}

/** The observer, also telling /readyz which shadows are suspended and why. */
function withShadowReadiness(observer: StreamJobObserver, setDetail: (lines: readonly string[]) => void): StreamJobObserver {
  const suspended = new Map<string, string>();
  return {
    ...observer,
    consumer: {
      ...observer.consumer,
      onShadowSuspended: (modelVersion, reason) => {
        observer.consumer?.onShadowSuspended?.(modelVersion, reason);
        suspended.set(modelVersion, reason);
        setDetail([...suspended].map(([version, why]) => `shadow ${version}: suspended (${why}); its keys are stale`));
      },
    },
  };
}
