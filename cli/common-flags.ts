import { ExecutionProviderChoices } from '../model/inference-protocol.js';
import type { FlagSpecs } from './flags.js';

/** Flags shared by the commands that talk to Kafka, Redis or the model. */
export const kafkaFlags = {
  brokers: { type: 'string', env: 'TASTE_KAFKA_BROKERS', default: '127.0.0.1:39092', description: 'Kafka bootstrap servers, comma-separated' },
  'kafka-ssl': { type: 'boolean', env: 'TASTE_KAFKA_SSL', default: false, description: 'connect to Kafka over TLS' },
  'kafka-tls-ca': { type: 'string', env: 'TASTE_KAFKA_TLS_CA', description: 'PEM file of the CA that signed the brokers\' TLS certificates (implies --kafka-ssl; default: the system\'s CAs)' },
  'kafka-sasl-mechanism': { type: 'string', env: 'TASTE_KAFKA_SASL_MECHANISM', choices: ['plain', 'scram-sha-256', 'scram-sha-512'], description: 'SASL mechanism' },
  'kafka-sasl-username': { type: 'string', env: 'TASTE_KAFKA_SASL_USERNAME', description: 'SASL user' },
  'kafka-sasl-password': { type: 'string', env: 'TASTE_KAFKA_SASL_PASSWORD', description: 'SASL password (prefer the env var)' },
  'plays-topic': { type: 'string', env: 'TASTE_PLAYS_TOPIC', default: 'taste.plays.v1', description: 'topic of PlayEvent records' },
  'searches-topic': { type: 'string', env: 'TASTE_SEARCHES_TOPIC', default: 'taste.searches.v1', description: 'topic of SearchEvent records' },
  'erasures-topic': { type: 'string', env: 'TASTE_ERASURES_TOPIC', default: 'taste.erasures.v1', description: 'topic of ErasureRequest records (docs/erasure.md)' },
  'dead-letter-topic': { type: 'string', env: 'TASTE_DEAD_LETTER_TOPIC', default: 'taste.dead-letter.v1', description: 'where refused records go' },
  'topic-partitions': { type: 'integer', env: 'TASTE_TOPIC_PARTITIONS', default: 4, min: 1, description: 'partitions for topics this command creates' },
} as const satisfies FlagSpecs;

export const redisFlags = {
  'redis-url': { type: 'string', env: 'TASTE_REDIS_URL', default: 'redis://127.0.0.1:36379', description: 'Redis URL (rediss:// for TLS; comma-separated nodes with --redis-cluster)' },
  'redis-tls-ca': { type: 'string', env: 'TASTE_REDIS_TLS_CA', description: 'PEM file of the CA that signed Redis\'s TLS certificate (rediss://; default: the system\'s CAs)' },
  'redis-cluster': { type: 'boolean', env: 'TASTE_REDIS_CLUSTER', default: false, description: 'treat --redis-url as Redis Cluster seed nodes' },
  'key-prefix': { type: 'string', env: 'TASTE_KEY_PREFIX', default: 'taste', description: 'first part of every Redis key' },
} as const satisfies FlagSpecs;

export const modelFlags = {
  model: { type: 'string', env: 'TASTE_MODEL_DIR', default: 'models/default', description: 'model directory (model.onnx, items.tsv, item_embeddings.f32)' },
  'execution-provider': { type: 'string', env: 'TASTE_EXECUTION_PROVIDER', default: 'cpu', choices: ExecutionProviderChoices, description: 'ONNX Runtime execution provider (auto: cuda, else webgpu, else cpu, whichever starts first; cuda needs scripts/install-cuda-provider.sh)' },
  'inference-workers': { type: 'integer', env: 'TASTE_INFERENCE_WORKERS', default: 1, min: 1, description: 'worker threads, one model session each' },
  'intra-op-threads': { type: 'integer', env: 'TASTE_INTRA_OP_THREADS', default: 0, description: 'threads per session (0: (cores - 1) / workers, at least 1)' },
  'inference-timeout-ms': { type: 'integer', env: 'TASTE_INFERENCE_TIMEOUT_MS', default: 30000, min: 1, description: 'longest one inference run may take before it is failed (retryably) and its worker replaced' },
} as const satisfies FlagSpecs;

export const metricsFlags = {
  'metrics-port': { type: 'integer', env: 'TASTE_METRICS_PORT', default: 9464, description: 'HTTP port of /metrics, /healthz and /readyz (0: none)' },
} as const satisfies FlagSpecs;

export const logFlags = {
  'log-level': { type: 'string', env: 'TASTE_LOG_LEVEL', default: 'info', choices: ['debug', 'info', 'warn', 'error', 'silent'], description: 'log level' },
} as const satisfies FlagSpecs;
