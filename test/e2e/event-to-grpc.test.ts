import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { createProducer, type Producer } from '../../consumers/kafka.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import { batchGetUserEmbeddings, createEmbeddingClient, type EmbeddingServiceClient, getUserEmbedding } from '../../serving/client.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, search, sendPlays, sendSearches, startTestJob, testKafka, uniqueTopics } from '../helpers/pipeline.js';

interface Context {
  job: StreamJob;
  server: ServingServer;
  client: EmbeddingServiceClient;
  producer: Producer;
  topics: ReturnType<typeof uniqueTopics>;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const topics = uniqueTopics();
  const job = await startTestJob({ topics });
  const server = await startServingServer({ service: { stores: [job.store] }, redis: job.redis, port: 0 });
  const producer = createProducer(testKafka());
  await producer.connect();
  t.context = { job, server, client: createEmbeddingClient(server.address), producer, topics };
});

test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.producer?.disconnect();
  await t.context.server?.close();
  await t.context.job?.stop();
});

test('an event produced to Kafka comes back as an embedding over gRPC, with its metadata', async (t) => {
  const { client, producer, topics, job } = t.context;
  const user = unique('listener');
  const eventTime = Date.now() - 2000;
  await sendPlays(producer, topics.play, [play(user, 'taste:track:42', eventTime - 1000)]);
  await sendSearches(producer, topics.search, [search(user, 'late night jazz', eventTime)]);

  const response = await eventually(async () => {
    try {
      const found = await getUserEmbedding(client, { userId: user });
      return found.embedding?.eventsInWindow === 2 ? found : undefined;
    } catch (error) {
      if ((error as grpc.ServiceError).code === grpc.status.NOT_FOUND) return undefined;
      throw error;
    }
  }, 'the embedding over gRPC');
  const embedding = response.embedding!;
  t.is(embedding.userId, user);
  t.is(embedding.modelVersion, job.bundle.metadata.modelVersion);
  t.is(embedding.dimension, job.bundle.metadata.embeddingDim);
  t.is(embedding.vector.length, job.bundle.metadata.embeddingDim);
  t.is(embedding.lastEventTimeMs, eventTime);
  t.true(embedding.updatedTimeMs >= eventTime, 'written after the event happened');
  t.true(Math.abs(Math.hypot(...embedding.vector) - 1) < 1e-4);

  // What serving returns is what the store holds, bit for bit.
  const [stored] = await job.store.readEmbeddings([user]);
  t.deepEqual(Float32Array.from(embedding.vector), stored!.vector);
});

test('BatchGetUserEmbeddings mixes found and missing users, in request order', async (t) => {
  const { client, producer, topics } = t.context;
  const known = unique('listener');
  await sendPlays(producer, topics.play, [play(known, 'taste:track:7', Date.now() - 1000)]);
  await eventually(async () => {
    const response = await batchGetUserEmbeddings(client, { userIds: [known] });
    return response.results[0]?.embedding ? true : undefined;
  }, 'the known user');
  const missing = unique('nobody');
  const response = await batchGetUserEmbeddings(client, { userIds: [missing, known, 'bad{id}'] });
  t.deepEqual(
    response.results.map((result) => [result.userId, result.embedding ? 'embedding' : result.error?.code]),
    [
      [missing, grpc.status.NOT_FOUND],
      [known, 'embedding'],
      ['bad{id}', grpc.status.INVALID_ARGUMENT],
    ],
  );
});
