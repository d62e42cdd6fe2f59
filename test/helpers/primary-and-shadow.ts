import type { TestFn } from 'ava';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { InferencePool } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR } from './environment.js';
import { storeTarget } from './redis-target.js';

/** The shipped stateful model: the other kind, used as the shadow beside the windowed default. */
export const STATEFUL_MODEL_DIR = fileURLToPath(new URL('../../../models/stateful', import.meta.url));

export interface LoadedModel {
  bundle: ModelBundle;
  pool: InferencePool;
}

/** Real Redis (single or Cluster, storeTarget) and two real models: the windowed default as primary, the stateful one as shadow. */
export interface PrimaryAndShadowContext {
  redis: RedisClient;
  primary: LoadedModel;
  shadow: LoadedModel;
}

/** Starts the context before a file's tests and closes it after them. */
export function withPrimaryAndShadow(test: TestFn<PrimaryAndShadowContext>): void {
  const target = storeTarget();
  test.before(async (t) => {
    const redis = createRedisClient({ url: target.url, cluster: target.cluster });
    await waitForRedis(redis);
    const start = async (dir: string): Promise<LoadedModel> => {
      const bundle = await loadModelBundle(dir);
      return { bundle, pool: await InferencePool.start({ bundle, intraOpThreads: 1 }) };
    };
    t.context = { redis, primary: await start(DEFAULT_MODEL_DIR), shadow: await start(STATEFUL_MODEL_DIR) };
  });
  test.after.always(async (t) => {
    await t.context.primary?.pool.close();
    await t.context.shadow?.pool.close();
    t.context.redis?.disconnect();
  });
}
