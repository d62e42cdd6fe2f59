import { randomUUID } from 'node:crypto';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { InferencePool } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import { createKafka, type Kafka } from '../../consumers/kafka.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { DEFAULT_MODEL_DIR, REDIS_URL } from '../helpers/environment.js';
import { testKafka, testLogger, uniqueTopics } from '../helpers/pipeline.js';

/** What every scenario needs: its own topics, group and key prefix, and a verifier's view of the store. */
export interface ScenarioContext {
  kafka: Kafka;
  topics: StreamTopics;
  groupId: string;
  keyPrefix: string;
  bundle: ModelBundle;
  pool: InferencePool;
  redis: RedisClient;
  store: FeatureStore;
  close(): Promise<void>;
}

export async function scenarioContext(redisUrl = REDIS_URL, brokers?: string[]): Promise<ScenarioContext> {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
  const redis = createRedisClient({ url: redisUrl, commandTimeoutMs: 5000 });
  redis.on('error', () => undefined);
  await waitForRedis(redis);
  const id = randomUUID().slice(0, 8);
  const keyPrefix = `rel-${id}`;
  return {
    kafka: brokers ? createKafka({ brokers, clientId: 'taste-test' }, testLogger) : testKafka(),
    topics: uniqueTopics(),
    groupId: `rel-group-${id}`,
    keyPrefix,
    bundle,
    pool,
    redis,
    store: new FeatureStore({
      redis,
      modelVersion: bundle.metadata.modelVersion,
      queryTokens: bundle.metadata.queryTokens,
      keyPrefix,
      ...(bundle.metadata.stateful ? { stateDim: bundle.metadata.stateful.stateDim } : {}),
    }),
    close: async () => {
      await pool.close();
      redis.disconnect();
    },
  };
}
