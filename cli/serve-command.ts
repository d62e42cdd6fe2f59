import { createLogger, type Logger, type LogLevel } from '../common/logger.js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient } from '../featurestore/redis-client.js';
import { ItemRetrieval } from '../model/item-retrieval.js';
import { loadModelBundle, type ModelBundle } from '../model/model-bundle.js';
import { startServingServer } from '../serving/server.js';
import { logFlags, metricsFlags, redisFlags } from './common-flags.js';
import { servingObserver, storeObserver } from '../metrics/observers.js';
import { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { RolloutMetrics, rolloutObserver } from '../metrics/rollout-metrics.js';
import { formatHelp, parseFlags, UsageError } from './flags.js';
import { redisOptions, ShutdownSignal } from './options.js';

const flags = {
  ...redisFlags,
  model: { type: 'string', env: 'TASTE_MODEL_DIR', default: 'models/default', description: 'model directory whose version is served by default (until `taste rollout set-default` names another)' },
  'model-versions': { type: 'string', env: 'TASTE_SERVE_MODEL_VERSIONS', default: '', description: 'other model versions to serve, comma-separated (e.g. during a rollout); embeddings only unless --item-model loads their model' },
  'item-model': {
    type: 'string',
    multiple: true,
    env: 'TASTE_ITEM_MODEL_DIR',
    description: "another version's model directory, for its item table (ScoreItems, RecommendItems); its version is served too; repeatable",
  },
  'max-candidates': { type: 'integer', env: 'TASTE_MAX_CANDIDATES', default: 1000, min: 1, max: 100_000, description: 'most item_uris per ScoreItems' },
  'max-k': { type: 'integer', env: 'TASTE_MAX_K', default: 1000, min: 1, max: 10_000, description: 'largest k of RecommendItems' },
  'ann-min-items': {
    type: 'integer',
    env: 'TASTE_ANN_MIN_ITEMS',
    default: 50_000,
    description: 'item tables of at least this many items get an approximate nearest-neighbour index for RecommendItems, built at start (0: always)',
  },
  host: { type: 'string', env: 'TASTE_GRPC_HOST', default: '0.0.0.0', description: 'interface to listen on' },
  port: { type: 'integer', env: 'TASTE_GRPC_PORT', default: 50051, description: 'gRPC port (0: any free port)' },
  'max-batch': { type: 'integer', env: 'TASTE_MAX_BATCH', default: 500, min: 1, description: 'most users per BatchGetUserEmbeddings' },
  'tls-cert': { type: 'string', env: 'TASTE_TLS_CERT', description: 'PEM certificate: serve TLS' },
  'tls-key': { type: 'string', env: 'TASTE_TLS_KEY', description: 'PEM private key of --tls-cert' },
  'tls-client-ca': { type: 'string', env: 'TASTE_TLS_CLIENT_CA', description: 'PEM CA: require client certificates it signed (mTLS)' },
  'rollout-poll-ms': {
    type: 'integer',
    env: 'TASTE_ROLLOUT_POLL_MS',
    default: 1000,
    min: 0,
    description: 'how often the default version set by `taste rollout set-default` is read; a switch is served within this plus one Redis round (0: never, --model stays the default)',
  },
  'replica-id': { type: 'string', env: 'TASTE_REPLICA_ID', description: 'this replica\'s name in `taste rollout status` (default: <hostname>:<pid>)' },
  'metrics-port': { ...metricsFlags['metrics-port'], default: 9465 },
  ...logFlags,
} as const;

export const serveHelp = formatHelp(
  'taste serve [options]',
  'The gRPC EmbeddingService (with grpc.health.v1 and server reflection) over the Redis feature store.',
  flags,
);

export async function runServeCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    console.log(serveHelp);
    return 0;
  }
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  if (values['tls-client-ca'] && !values['tls-cert']) throw new UsageError('--tls-client-ca needs --tls-cert and --tls-key');
  const logger = createLogger(values['log-level'] as LogLevel, { component: 'serving' });
  const shutdown = new ShutdownSignal((message) => logger.info(message));
  const metrics = new PipelineMetrics();
  const metricsServer = values['metrics-port'] > 0 ? await startMetricsServer(metrics, { port: values['metrics-port'] }) : undefined;
  // Metrics that nobody can read cost nothing: without the metrics server no observer records them.
  const observed = metricsServer !== undefined;
  const bundle = await loadModelBundle(values.model);
  const itemBundles = [bundle];
  for (const directory of values['item-model']) itemBundles.push(await loadModelBundle(directory));
  const itemTables = new Map<string, ItemRetrieval>();
  const dims = new Map<string, number>();
  for (const loaded of itemBundles) {
    const version = loaded.metadata.modelVersion;
    if (itemTables.has(version)) throw new UsageError(`two model directories hold model version "${version}" (--model, --item-model): pass one per version`);
    itemTables.set(version, itemRetrieval(loaded, values['ann-min-items'], logger));
    dims.set(version, loaded.metadata.embeddingDim);
  }
  const versions = [...itemTables.keys(), ...values['model-versions'].split(',').map((v) => v.trim()).filter(Boolean)];
  for (const loaded of itemBundles) metrics.servesModel(loaded.metadata.modelVersion, loaded.metadata.kind);
  for (const version of new Set(versions)) if (!itemTables.has(version)) metrics.servesModel(version, 'none');
  const redis = createRedisClient(redisOptions(values, 'taste-serving'));
  const stores = [...new Set(versions)].map(
    (modelVersion) =>
      new FeatureStore({
        redis,
        modelVersion,
        queryTokens: bundle.metadata.queryTokens,
        // Versions whose model is not loaded here are read without a length check.
        ...(dims.has(modelVersion) ? { embeddingDim: dims.get(modelVersion)! } : {}),
        keyPrefix: values['key-prefix'],
        ...(observed ? { observer: storeObserver(metrics) } : {}),
        onBatchReadsRefused: (reason) =>
          logger.warn('batched reads refused: reading one HMGET per user from now on (the reason says why: a serving user without +evalsha +eval, or a Redis older than 7; docs/deployment.md)', { modelVersion, reason }),
      }),
  );
  const served = [...new Set(versions)];
  const rolloutMetrics = new RolloutMetrics(metrics.registry, served);
  const server = await startServingServer({
    service: {
      stores,
      defaultModelVersion: bundle.metadata.modelVersion,
      maxBatchSize: values['max-batch'],
      itemTables,
      maxCandidates: values['max-candidates'],
      maxK: values['max-k'],
      logger,
      ...(observed ? { observer: servingObserver(metrics) } : {}),
    },
    redis,
    ...(values['rollout-poll-ms'] > 0
      ? {
          rollout: {
            keyPrefix: values['key-prefix'],
            pollMs: values['rollout-poll-ms'],
            ...(observed ? { observer: rolloutObserver(rolloutMetrics, served) } : {}),
            ...(values['replica-id'] ? { replicaId: values['replica-id'] } : {}),
          },
        }
      : {}),
    host: values.host,
    port: values.port,
    logger,
    ...(values['tls-cert'] && values['tls-key']
      ? {
          tls: {
            certPath: values['tls-cert'],
            keyPath: values['tls-key'],
            ...(values['tls-client-ca'] ? { caPath: values['tls-client-ca'], requireClientCert: true } : {}),
          },
        }
      : {}),
  });
  logger.info('serving', {
    address: `${values.host}:${server.port}`,
    versions: served,
    defaultVersion: server.service.defaultModelVersion,
    configuredDefault: bundle.metadata.modelVersion,
    ...(server.rolloutWatcher ? { replicaId: server.rolloutWatcher.replicaId, rolloutPollMs: values['rollout-poll-ms'] } : {}),
    itemTables: [...itemTables.keys()],
  });
  metricsServer?.setReady(true);
  await shutdown.requested;
  metricsServer?.setReady(false);
  await shutdown.stopWith(async () => {
    await server.close();
    redis.disconnect();
    await metricsServer?.close();
  });
  return 0;
}

/** The item table of a loaded model, with its index when the table is large enough (timed: it blocks the start). */
function itemRetrieval(bundle: ModelBundle, annMinItems: number, logger: Logger): ItemRetrieval {
  const retrieval = new ItemRetrieval(bundle.itemTable, bundle.vocabulary, { annMinItems });
  const { index } = retrieval;
  logger.info('item table loaded', {
    modelVersion: bundle.metadata.modelVersion,
    items: retrieval.items,
    dimension: bundle.itemTable.dim,
    search: index ? 'approximate (usearch HNSW)' : 'exact',
    ...(index ? { indexBuildSeconds: Number(index.buildSeconds.toFixed(2)), indexMemoryBytes: index.memoryBytes } : {}),
  });
  return retrieval;
}
