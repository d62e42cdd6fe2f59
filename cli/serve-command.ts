import { createLogger, type LogLevel } from '../common/logger.js';
import { FeatureStore } from '../featurestore/feature-store.js';
import { createRedisClient } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { startServingServer } from '../serving/server.js';
import { logFlags, metricsFlags, redisFlags } from './common-flags.js';
import { servingObserver, storeObserver } from '../metrics/observers.js';
import { PipelineMetrics } from '../metrics/pipeline-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { formatHelp, parseFlags, UsageError } from './flags.js';
import { redisOptions, ShutdownSignal } from './options.js';

const flags = {
  ...redisFlags,
  model: { type: 'string', env: 'TASTE_MODEL_DIR', default: 'models/default', description: 'model directory whose version is served by default' },
  'model-versions': { type: 'string', env: 'TASTE_SERVE_MODEL_VERSIONS', default: '', description: 'other model versions to serve, comma-separated (e.g. during a rollout)' },
  host: { type: 'string', env: 'TASTE_GRPC_HOST', default: '0.0.0.0', description: 'interface to listen on' },
  port: { type: 'integer', env: 'TASTE_GRPC_PORT', default: 50051, description: 'gRPC port (0: any free port)' },
  'max-batch': { type: 'integer', env: 'TASTE_MAX_BATCH', default: 500, min: 1, description: 'most users per BatchGetUserEmbeddings' },
  'tls-cert': { type: 'string', env: 'TASTE_TLS_CERT', description: 'PEM certificate: serve TLS' },
  'tls-key': { type: 'string', env: 'TASTE_TLS_KEY', description: 'PEM private key of --tls-cert' },
  'tls-client-ca': { type: 'string', env: 'TASTE_TLS_CLIENT_CA', description: 'PEM CA: require client certificates it signed (mTLS)' },
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
  const bundle = await loadModelBundle(values.model);
  const versions = [bundle.metadata.modelVersion, ...values['model-versions'].split(',').map((v) => v.trim()).filter(Boolean)];
  const redis = createRedisClient(redisOptions(values, 'taste-serving'));
  const stores = [...new Set(versions)].map(
    (modelVersion) =>
      new FeatureStore({
        redis,
        modelVersion,
        queryTokens: bundle.metadata.queryTokens,
        // Other versions' models are not loaded here, so only the loaded one's length is checked.
        ...(modelVersion === bundle.metadata.modelVersion ? { embeddingDim: bundle.metadata.embeddingDim } : {}),
        keyPrefix: values['key-prefix'],
        observer: storeObserver(metrics),
      }),
  );
  const server = await startServingServer({
    service: {
      stores,
      defaultModelVersion: bundle.metadata.modelVersion,
      maxBatchSize: values['max-batch'],
      logger,
      observer: servingObserver(metrics),
    },
    redis,
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
  logger.info('serving', { address: `${values.host}:${server.port}`, versions, defaultVersion: bundle.metadata.modelVersion });
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
