import test from 'ava';
import { createLogger } from '../../common/logger.js';
import { createProducer, ensureTopics } from '../../consumers/kafka.js';
import { OffsetRangeReader, type RangeRecord } from '../../consumers/offset-range-reader.js';
import { unique } from '../helpers/environment.js';
import { testKafka } from '../helpers/pipeline.js';

// The Kafka range reader against the real broker: a range resolved before its records were
// deleted must end, not wait for records that can no longer come (a backfill that stalls silently).

interface Line {
  level: string;
  msg: string;
  from?: number;
  to?: number;
  logStart?: number;
}

async function topicWith(records: number): Promise<string> {
  const kafka = testKafka();
  const topic = `${unique('t')}.range`;
  await ensureTopics(kafka, [{ topic, partitions: 1 }]);
  const producer = createProducer(kafka);
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: records }, (_, i) => ({ key: 'u', value: `r${i}` })) });
  } finally {
    await producer.disconnect();
  }
  return topic;
}

/** Deletes the records below `offset` as retention would (Kafka's DeleteRecords: the log start moves). */
async function deleteBelow(topic: string, offset: number): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.fetchTopicMetadata({ topics: [topic] }); // deleteTopicRecords needs the metadata loaded
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: String(offset) }] });
  } finally {
    await admin.disconnect();
  }
}

async function readAll(topic: string, from: number, to: number, lines: Line[]): Promise<RangeRecord[]> {
  const logger = createLogger('info', {}, (line) => lines.push(JSON.parse(line) as Line));
  const reader = new OffsetRangeReader({ kafka: testKafka(), topics: [topic], logger, idleCheckMs: 300 });
  await reader.start();
  try {
    const records: RangeRecord[] = [];
    for await (const batch of reader.read(topic, 0, from, to)) records.push(...batch);
    return records;
  } finally {
    await reader.close();
  }
}

test('a range whose records were all deleted, with nothing written after them, ends empty and says so', async (t) => {
  t.timeout(60_000);
  const topic = await topicWith(5);
  await deleteBelow(topic, 5);
  const lines: Line[] = [];
  const records = await readAll(topic, 0, 5, lines);
  t.deepEqual(records, []);
  const warning = lines.find((line) => line.level === 'warn' && /offsets missing from the Kafka range/.test(line.msg));
  t.like(warning, { from: 0, to: 5, logStart: 5 }, JSON.stringify(lines));
});

test('a range whose first records were deleted yields the rest, in order', async (t) => {
  t.timeout(60_000);
  const topic = await topicWith(6);
  await deleteBelow(topic, 2);
  const records = await readAll(topic, 0, 6, []);
  t.deepEqual(records.map((r) => [r.offset, r.value?.toString()]), [2, 3, 4, 5].map((o) => [o, `r${o}`]));
});
