import type { KafkaConnectionOptions } from '../consumers/kafka.js';
import type { StreamTopics } from '../consumers/stream-consumer.js';
import type { RedisConnectionOptions } from '../featurestore/redis-client.js';
import type { FlagValues } from './flags.js';
import { UsageError } from './flags.js';
import type { kafkaFlags, redisFlags } from './common-flags.js';

export function kafkaOptions(values: FlagValues<typeof kafkaFlags>, clientId: string): KafkaConnectionOptions {
  const brokers = values.brokers.split(',').map((broker) => broker.trim()).filter(Boolean);
  if (brokers.length === 0) throw new UsageError('--brokers needs at least one host:port');
  const options: KafkaConnectionOptions = { brokers, clientId, ssl: values['kafka-ssl'] };
  const mechanism = values['kafka-sasl-mechanism'];
  if (mechanism) {
    const username = values['kafka-sasl-username'];
    const password = values['kafka-sasl-password'];
    if (!username || !password) {
      throw new UsageError('--kafka-sasl-mechanism needs --kafka-sasl-username and TASTE_KAFKA_SASL_PASSWORD');
    }
    options.sasl = { mechanism: mechanism as 'plain' | 'scram-sha-256' | 'scram-sha-512', username, password };
  }
  return options;
}

export function topicsOf(values: FlagValues<typeof kafkaFlags>): StreamTopics {
  return { play: values['plays-topic'], search: values['searches-topic'], deadLetter: values['dead-letter-topic'] };
}

export function redisOptions(values: FlagValues<typeof redisFlags>, connectionName: string): RedisConnectionOptions {
  return { url: values['redis-url'], cluster: values['redis-cluster'], connectionName };
}

/**
 * Runs `stop` on the first SIGINT/SIGTERM; a second signal, or `graceMs` without finishing,
 * exits at once (uncommitted work is replayed by the next consumer, so nothing is lost).
 */
export function onShutdownSignal(stop: () => Promise<void>, log: (message: string) => void, graceMs = 25_000): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`${signal}: shutting down (again to force)`);
      const timer = setTimeout(() => {
        log(`shutdown took longer than ${graceMs} ms: exiting`);
        process.exit(1);
      }, graceMs);
      timer.unref();
      stop()
        .catch((error) => log(`shutdown error: ${(error as Error).message}`))
        .finally(() => {
          clearTimeout(timer);
          resolve();
        });
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  });
}
