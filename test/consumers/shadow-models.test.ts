import anyTest, { type TestFn } from 'ava';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import { encodeWindow } from '../../featurestore/codec.js';
import { StateFields } from '../../featurestore/keys.js';
import { readQualityTotals } from '../../featurestore/live-quality.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { DEFAULT_MODEL_DIR, eventually, unique } from '../helpers/environment.js';
import { play, sendPlays, type StreamJobContext, startTestJob, singlePartitionTopics, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';

// A stream job running the default model with the stateful model as its shadow: one Kafka read,
// both versions written, the shadow never holding the primary back. Real Kafka, Redis, ONNX Runtime.

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);
const SHADOW_DIR = fileURLToPath(new URL('../../../models/stateful', import.meta.url));

test('with a shadow model, one read of the topic writes every version and commits once', async (t) => {
  const topics = await singlePartitionTopics(t);
  const groupId = unique('group');
  const shadowCalls: [string, number][] = [];
  const stream = await job(t, { topics, groupId, shadowModelDirs: [SHADOW_DIR], observer: { onShadowInference: (version, seconds) => shadowCalls.push([version, seconds]) } });
  const [shadow] = stream.shadows;
  t.not(shadow!.store.modelVersion, stream.store.modelVersion);
  const users = [unique('user'), unique('user'), unique('user')];
  const at = Date.now() - 600_000;
  const plays = users.flatMap((user, index) => Array.from({ length: index + 2 }, (_, n) => play(user, `taste:track:${3 + n}`, at + n * 1000)));
  await sendPlays(t.context.producer, topics.play, plays);

  const want = users.map((_, index) => index + 2);
  await eventually(async () => {
    const [primary, shadowed] = [await stream.store.readEmbeddings(users), await shadow!.store.readEmbeddings(users)];
    return primary.every((found, index) => found?.eventsInWindow === want[index]) && shadowed.every((found) => found !== undefined) ? true : undefined;
  }, 'both versions written');
  const shadowStates = await shadow!.store.loadStates(users);
  t.deepEqual(
    users.map((user) => shadowStates.get(user)!.appliedTotal),
    want,
    'every event once in the shadow',
  );
  t.is(stream.consumer.stats.messages, plays.length, 'each record read once, not once per model');
  t.deepEqual(stream.shadowStatus(), [{ modelVersion: shadow!.store.modelVersion, suspended: undefined }]);
  t.true(shadowCalls.length > 0 && shadowCalls.every(([version, seconds]) => version === shadow!.store.modelVersion && seconds > 0), 'the shadow\'s model time is reported under its version');

  const admin = t.context.kafka.admin();
  await admin.connect();
  try {
    await eventually(async () => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topics.play] });
      return committed?.partitions[0]?.offset === String(plays.length) ? true : undefined;
    }, 'the offsets committed past every record');
  } finally {
    await admin.disconnect();
  }
  t.pass();
});

test('live quality: a play is scored in every version before it is applied, and each version\'s totals reach Redis', async (t) => {
  const topics = await singlePartitionTopics(t);
  const keyPrefix = unique('quality');
  const stream = await job(t, { topics, keyPrefix, shadowModelDirs: [SHADOW_DIR], qualitySampleRate: 1 });
  const versions = [stream.store.modelVersion, stream.shadows[0]!.store.modelVersion];
  const totals = async () => readQualityTotals(stream.redis, keyPrefix, versions, Date.now(), 2);
  const user = unique('user');
  const at = Date.now() - 600_000;
  await sendPlays(t.context.producer, topics.play, [3, 4, 5].map((n) => play(user, `taste:track:${n}`, at + n * 1000)));
  await eventually(async () => ((await stream.shadows[0]!.store.loadStates([user])).get(user)!.appliedTotal === 3 ? true : undefined), 'the history applied');
  const before = await totals();

  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:9', at + 60_000)]);
  const after = await eventually(async () => {
    const now = await totals();
    return versions.every((version) => now.get(version)!.samples === before.get(version)!.samples + 1) ? now : undefined;
  }, 'the play scored in both versions');
  for (const version of versions) {
    const added = after.get(version)!.reciprocalRankSum - before.get(version)!.reciprocalRankSum;
    t.true(added > 0 && added <= 1, `${version}: one reciprocal rank added (${added})`);
  }
});

test('a shadow that cannot load refuses the start, naming it; so does one of the primary\'s version', async (t) => {
  const topics = uniqueTopics();
  const missing = await t.throwsAsync(startTestJob({ topics, shadowModelDirs: ['/nonexistent/shadow'] }), { instanceOf: TasteError });
  t.is(missing?.code, ErrorCodes.MODEL_LOAD);
  t.regex(missing?.message ?? '', /^shadow model \/nonexistent\/shadow: /);
  const same = await t.throwsAsync(startTestJob({ topics, shadowModelDirs: [DEFAULT_MODEL_DIR] }), { instanceOf: TasteError });
  t.is(same?.code, ErrorCodes.CONFIG_INVALID);
  t.regex(same?.message ?? '', /already runs: a shadow needs a version of its own/);
});

/** Leaves a shadow state whose window holds an item past the shadow's item table: ONNX Runtime refuses any run holding it. */
async function poisonShadow(stream: StreamJob, userId: string): Promise<void> {
  const shadow = stream.shadows[0]!;
  const badItem = shadow.bundle.metadata.numItems + 1000;
  const window = [{ eventTimeMs: Date.now() - 3_600_000, stream: Streams.PLAY, partition: 0, offset: 0, itemId: badItem, kind: EventKinds.PLAY, queryTokens: [] }];
  await stream.redis.hset(shadow.store.key(userId), StateFields.window, encodeWindow(window, shadow.store.queryTokens));
}

test('a shadow whose inference fails a whole step is suspended: the primary flows on, the observer is told, the shadow is not written again', async (t) => {
  const topics = await singlePartitionTopics(t);
  const suspended: [string, string][] = [];
  const stream = await job(t, { topics, shadowModelDirs: [SHADOW_DIR], observer: { consumer: { onShadowSuspended: (version, reason) => suspended.push([version, reason]) } } });
  const shadowVersion = stream.shadows[0]!.store.modelVersion;
  const users = [unique('user'), unique('user')];
  for (const user of users) await poisonShadow(stream, user);
  const at = Date.now() - 60_000;
  await sendPlays(t.context.producer, topics.play, users.map((user) => play(user, 'taste:track:3', at)));
  await eventually(async () => ((await stream.store.readEmbeddings(users)).every((found) => found?.eventsInWindow === 1) ? true : undefined), 'the primary written');
  await eventually(async () => (suspended.length > 0 ? true : undefined), 'the suspension reported');
  t.is(suspended[0]![0], shadowVersion);
  t.regex(suspended[0]![1], /TASTE_INFERENCE_FAILED/);
  t.is(stream.shadowStatus()[0]!.suspended, suspended[0]![1]);

  const fresh = unique('user');
  await sendPlays(t.context.producer, topics.play, [play(fresh, 'taste:track:4', at + 1000), play(users[0]!, 'taste:track:4', at + 1000)]);
  await eventually(async () => ((await stream.store.readEmbeddings([fresh]))[0] ? true : undefined), 'the primary goes on');
  t.deepEqual(await stream.shadows[0]!.store.readEmbeddings([fresh, ...users]), [undefined, undefined, undefined], 'the suspended shadow is not written');
  t.is(suspended.length, 1, 'suspended once');
});
