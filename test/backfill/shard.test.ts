import test from 'ava';
import { ChunkReader } from '../../backfill/chunks.js';
import { peekUserId } from '../../backfill/jsonl-source.js';
import { checkShardablePartitions, ownsPartition, ownsUser, userHash, validateShard } from '../../backfill/shard.js';
import type { SourceCursor, SourceReader, SourceRecord } from '../../backfill/source.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { UsageError } from '../../cli/flags.js';
import { shardOption } from '../../cli/backfill-command.js';

test('the user hash is 32-bit FNV-1a over UTF-8 bytes (the published test vectors)', (t) => {
  // From the FNV reference (Fowler, Noll, Vo): FNV-1a 32-bit of "", "a" and "foobar".
  t.is(userHash(''), 0x811c9dc5);
  t.is(userHash('a'), 0xe40c292c);
  t.is(userHash('foobar'), 0xbf9cf968);
  // Non-ASCII is hashed as its UTF-8 bytes: "é" is C3 A9.
  t.is(userHash('é'), Math.imul(Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) >>> 0 ^ 0xa9, 0x01000193) >>> 0);
});

test('the shards of one count take every user exactly once, and each a fair part', (t) => {
  const users = Array.from({ length: 4000 }, (_, i) => `user-${i}`);
  for (const count of [1, 2, 3, 4, 7]) {
    const taken = users.map((user) => Array.from({ length: count }, (_, index) => index).filter((index) => ownsUser({ index, count }, user)));
    t.true(taken.every((owners) => owners.length === 1), `every user in exactly one of ${count} shards`);
    for (let index = 0; index < count; index++) {
      const share = taken.filter((owners) => owners[0] === index).length / users.length;
      t.true(Math.abs(share - 1 / count) < 0.05, `shard ${index}/${count} takes ${share}`);
    }
  }
});

test('Kafka shards take the partitions p with p mod N = I', (t) => {
  const owned = (index: number, count: number) => [0, 1, 2, 3, 4, 5, 6, 7].filter((p) => ownsPartition({ index, count }, p));
  t.deepEqual(owned(0, 1), [0, 1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(owned(1, 2), [1, 3, 5, 7]);
  t.deepEqual(owned(3, 4), [3, 7]);
  t.deepEqual(owned(2, 3), [2, 5]);
});

test('a Kafka range is sharded only where each user stays in one shard', (t) => {
  const counts = (plays: number, searches: number) => new Map([['plays', plays], ['searches', searches]]);
  t.notThrows(() => checkShardablePartitions({ index: 0, count: 3 }, counts(4, 4)), 'equal partition counts: any N');
  t.notThrows(() => checkShardablePartitions({ index: 1, count: 2 }, counts(12, 6)), 'N divides both');
  t.notThrows(() => checkShardablePartitions({ index: 0, count: 1 }, counts(5, 3)), 'unsharded');
  const error = t.throws(() => checkShardablePartitions({ index: 0, count: 4 }, counts(12, 6)), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.CONFIG_INVALID);
  t.regex(error?.message ?? '', /different partition counts \(plays: 12, searches: 6\).*a shard count that divides every partition count/);
});

test('validateShard refuses an index outside 0..N-1 and a count below 1, with a code', (t) => {
  t.deepEqual(validateShard({ index: 3, count: 4 }), { index: 3, count: 4 });
  for (const shard of [{ index: 4, count: 4 }, { index: -1, count: 4 }, { index: 0, count: 0 }, { index: 0.5, count: 2 }]) {
    const error = t.throws(() => validateShard(shard), { instanceOf: TasteError }, JSON.stringify(shard));
    t.is(error?.code, ErrorCodes.CONFIG_INVALID);
  }
});

test('--shard I/N, or --shards N with JOB_COMPLETION_INDEX; anything else is a usage error naming the fix', (t) => {
  t.is(shardOption(undefined, undefined, undefined), undefined);
  t.is(shardOption(undefined, undefined, '3'), undefined, 'an Indexed Job without --shards is unsharded');
  t.deepEqual(shardOption('1/4', undefined, undefined), { index: 1, count: 4 });
  t.deepEqual(shardOption('1/4', 4, '2'), { index: 1, count: 4 }, '--shard wins over the pod index');
  t.deepEqual(shardOption(undefined, 4, '2'), { index: 2, count: 4 });
  const refused: [Parameters<typeof shardOption>, RegExp][] = [
    [['4/4', undefined, undefined], /--shard 4\/4: the shard index must be below the count \(0-based: 0\.\.3\)/],
    [['0/0', undefined, undefined], /--shard 0\/0: the shard count must be at least 1/],
    [['1of4', undefined, undefined], /--shard must be I\/N/],
    [['-1/4', undefined, undefined], /--shard must be I\/N/],
    [['1/2', 4, undefined], /--shard 1\/2 and --shards 4 disagree/],
    [[undefined, 4, undefined], /--shards 4 needs this process's shard index: give --shard I\/4, or run it as a Kubernetes Indexed Job/],
    [[undefined, 4, 'x'], /JOB_COMPLETION_INDEX must be a whole number/],
    [[undefined, 4, '4'], /JOB_COMPLETION_INDEX 4 with --shards 4: the shard index must be below the count/],
  ];
  for (const [args, message] of refused) {
    const error = t.throws(() => shardOption(...args), { instanceOf: UsageError }, JSON.stringify(args));
    t.is(error?.code, ErrorCodes.USAGE);
    t.regex(error?.message ?? '', message);
  }
});

/** A source of `count` records, each one filtered (only the boundaries matter here). */
function source(label: string, count: number): SourceReader {
  return {
    label,
    start: { at: 0, next: 0 },
    units: count,
    unitsDone: (cursor: SourceCursor) => cursor.next,
    locate: (at: number) => `${label}@${at}`,
    async *read(from: SourceCursor): AsyncGenerator<SourceRecord[]> {
      const records: SourceRecord[] = [];
      for (let at = from.next + 1; at <= count; at++) records.push({ at, next: at, outcome: { type: 'filtered' } });
      // Two batches per read, so a chunk end inside a batch is exercised too.
      yield records.slice(0, 3);
      yield records.slice(3);
    },
  };
}

async function chunkSizes(reader: ChunkReader): Promise<number[]> {
  const sizes: number[] = [];
  for (let chunk = await reader.next(); chunk; chunk = chunk.exhausted ? undefined : await reader.next()) sizes.push(chunk.records);
  return sizes;
}

test('with splitAtSources a chunk never spans two sources, so a subset of the sources is cut as it is in the whole', async (t) => {
  const all = [source('a', 7), source('b', 4), source('c', 5)];
  const split = (sources: SourceReader[]) => chunkSizes(new ChunkReader({ sources, from: { source: 0, cursor: undefined }, chunkSize: 3, splitAtSources: true }));
  t.deepEqual(await split(all), [3, 3, 1, 3, 1, 3, 2]);
  t.deepEqual(await split([all[0]!, all[2]!]), [3, 3, 1, 3, 2], 'sources a and c alone: their chunks as above');
  const across = await chunkSizes(new ChunkReader({ sources: all, from: { source: 0, cursor: undefined }, chunkSize: 3 }));
  t.deepEqual(across, [3, 3, 3, 3, 3, 1], 'without it, chunks run on across sources');
});

test('a JSONL line gives its user id without a parse only where the text leaves no doubt', (t) => {
  // Each expected id is read off the line by hand; undefined: the line must be parsed in full.
  const cases: [string, string | undefined][] = [
    ['{"type":"play","userId":"user-7","itemUri":"taste:track:2","eventTimeMs":1}', 'user-7'],
    ['{"userId":"a.b:c@d+e=f_g-1","type":"search","eventTimeMs":1}', 'a.b:c@d+e=f_g-1'],
    ['{ "type": "play", "userId" : "spaced" }', 'spaced'],
    ['{"type":"play","userId":"last"}', 'last'],
    // Repeated keys: JSON.parse keeps the last, so no guess.
    ['{"userId":"a","type":"play","userId":"b"}', undefined],
    // Escapes in the value, or characters a user id cannot have: the parse decides.
    ['{"type":"play","userId":"us\\u0065r"}', undefined],
    ['{"type":"play","userId":"a b"}', undefined],
    ['{"type":"play","userId":""}', undefined],
    [`{"type":"play","userId":"${'x'.repeat(129)}"}`, undefined],
    ['{"type":"play","userId":7}', undefined],
    // "userId" inside a string value is not the key.
    ['{"type":"search","query":"\\"userId\\":\\"bob\\"","userId":"carol"}', 'carol'],
    ['{"type":"search","query":"x \\"userId\\":\\"bob\\","eventTimeMs":1}', undefined],
    ['{"type":"play","eventTimeMs":1}', undefined],
  ];
  for (const [line, expected] of cases) t.is(peekUserId(line), expected, line);
});
