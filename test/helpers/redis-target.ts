import { REDIS_URL } from './environment.js';

/**
 * Which Redis the store tests run against: the single server by default, or a Redis Cluster when
 * TASTE_TEST_REDIS_CLUSTER_URL names its seed nodes (the same tests must pass on both).
 */
export function storeTarget(): { name: string; url: string; cluster: boolean } {
  const clusterUrl = process.env.TASTE_TEST_REDIS_CLUSTER_URL;
  return clusterUrl ? { name: 'cluster', url: clusterUrl, cluster: true } : { name: 'single', url: REDIS_URL, cluster: false };
}
