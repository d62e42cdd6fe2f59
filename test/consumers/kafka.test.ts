import test from 'ava';
import { ensureTopics } from '../../consumers/kafka.js';
import { unique } from '../helpers/environment.js';
import { testKafka } from '../helpers/pipeline.js';

async function partitionLeaders(topic: string): Promise<number[]> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics[0]!.partitions.map(({ leader }) => leader);
  } finally {
    await admin.disconnect();
  }
}

test('ensureTopics returns once every partition of a new topic has a leader', async (t) => {
  // Repeated because the race it guards against (metadata not yet aware of a topic just created)
  // shows up only now and then.
  for (let round = 0; round < 5; round += 1) {
    const topic = unique('ensure');
    await ensureTopics(testKafka(), [{ topic, partitions: 3 }]);
    const leaders = await partitionLeaders(topic);
    t.is(leaders.length, 3);
    t.true(leaders.every((leader) => leader >= 0), `leaders ${leaders.join(', ')}`);
  }
});

test('ensureTopics: concurrent callers for the same topic both succeed', async (t) => {
  const topic = unique('ensure');
  await Promise.all([1, 2, 3].map(() => ensureTopics(testKafka(), [{ topic, partitions: 2 }])));
  t.is((await partitionLeaders(topic)).length, 2);
});

test('ensureTopics leaves an existing topic as it is', async (t) => {
  const topic = unique('ensure');
  await ensureTopics(testKafka(), [{ topic, partitions: 2 }]);
  await ensureTopics(testKafka(), [{ topic, partitions: 5 }]);
  t.is((await partitionLeaders(topic)).length, 2);
});
