import { createLogger, type LogLevel } from '../common/logger.js';
import { EventProducer } from '../consumers/event-producer.js';
import { createKafka, createProducer, ensureTopics } from '../consumers/kafka.js';
import { createCatalogue } from '../simulator/catalogue.js';
import { World } from '../simulator/world.js';
import { kafkaFlags, logFlags } from './common-flags.js';
import { formatHelp, parseFlags } from './flags.js';
import { kafkaOptions, topicsOf } from './options.js';
import { produceSimulatedTraffic } from './simulated-traffic.js';

export const simulationFlags = {
  users: { type: 'integer', env: 'TASTE_SIM_USERS', default: 3000, min: 1, description: 'simulated listeners' },
  items: { type: 'integer', env: 'TASTE_SIM_ITEMS', default: 5000, min: 200, description: 'catalogue size (must match the model: models/default has 5000)' },
  'catalogue-seed': { type: 'integer', env: 'TASTE_SIM_CATALOGUE_SEED', default: 1, description: 'seed of the catalogue (models/default was exported for seed 1)' },
  seed: { type: 'integer', env: 'TASTE_SIM_SEED', default: 1, description: 'seed of the listeners and their behaviour' },
  rate: { type: 'integer', env: 'TASTE_SIM_RATE', default: 1000, min: 1, description: 'events per second' },
} as const;

const flags = {
  ...kafkaFlags,
  ...simulationFlags,
  duration: { type: 'integer', env: 'TASTE_SIM_DURATION', default: 60, description: 'seconds to produce (0: until Ctrl-C)' },
  ...logFlags,
} as const;

export const produceHelp = formatHelp(
  'taste produce [options]',
  'Streams simulated play and search events (protobuf, keyed by user) into the Kafka topics, stamped with the current time.',
  flags,
);

export async function runProduceCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(flags, argv, env);
  if (help) {
    console.log(produceHelp);
    return 0;
  }
  const logger = createLogger(values['log-level'] as LogLevel, { component: 'producer' });
  const kafka = createKafka(kafkaOptions(values, 'taste-producer'), logger);
  const topics = topicsOf(values);
  await ensureTopics(kafka, [
    { topic: topics.play, partitions: values['topic-partitions'] },
    { topic: topics.search, partitions: values['topic-partitions'] },
  ]);
  const producer = createProducer(kafka, { idempotent: true });
  await producer.connect();
  const world = new World({
    seed: values.seed,
    users: values.users,
    catalogue: createCatalogue({ seed: values['catalogue-seed'], items: values.items }),
    durationMs: Number.POSITIVE_INFINITY,
  });
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  const summary = await produceSimulatedTraffic({
    world,
    producer: new EventProducer(producer, topics),
    ratePerSecond: values.rate,
    durationMs: values.duration * 1000,
    signal: stop.signal,
    onProgress: (sent) => logger.info('progress', { sent }),
  });
  await producer.disconnect();
  logger.info('done', { sent: summary.sent, users: summary.eventsByUser.size });
  return 0;
}
