import test from 'ava';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { forEachConcurrently, planBatches } from '../../backfill/batches.js';
import { checkpointMismatch, CHECKPOINT_FORMAT, type Checkpoint, fingerprintOf, loadCheckpoint, saveCheckpoint } from '../../backfill/checkpoint.js';
import { DistinctCount } from '../../backfill/distinct-count.js';
import { gunzippedSize } from '../../backfill/file-bytes.js';
import { discoverFiles } from '../../backfill/file-discovery.js';
import { fileCoordinates, fileDigest } from '../../backfill/file-identity.js';
import { readJsonlLines } from '../../backfill/jsonl-source.js';
import { LengthGroupedEmbedder } from '../../backfill/length-grouped-embedder.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import type { SourcedEvent, WindowEvent } from '../../events/window-event.js';
import { tempDir } from './helpers.js';

function sourced(userId: string, offset: number, topic = 't'): SourcedEvent {
  return { userId, topic, event: { eventTimeMs: 1e12 + offset, stream: 0, partition: 0, offset, itemId: 2, kind: 1, queryTokens: [] } };
}

test('planBatches puts each user in exactly one batch, in first-appearance order, events in read order', (t) => {
  const events = [sourced('a', 1), sourced('b', 2), sourced('a', 3), sourced('c', 4), sourced('b', 5), sourced('d', 6), sourced('a', 7)];
  const batches = planBatches(events, 2);
  t.deepEqual(
    batches.map((batch) => batch.map((event) => `${event.userId}${event.event.offset}`)),
    [
      ['a1', 'a3', 'a7', 'b2', 'b5'],
      ['c4', 'd6'],
    ],
  );
  const seen = new Set<string>();
  for (const batch of batches) {
    const users = new Set(batch.map((event) => event.userId));
    for (const user of users) t.false(seen.has(user), `user ${user} in two batches`);
    for (const user of users) seen.add(user);
  }
  t.deepEqual(planBatches([], 3), []);
  t.throws(() => planBatches(events, 0), { instanceOf: RangeError });
});

test('forEachConcurrently bounds the work in flight and stops starting work after a failure', async (t) => {
  let inFlight = 0;
  let peak = 0;
  const done: number[] = [];
  await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5 * (item % 3)));
    inFlight--;
    done.push(item);
  });
  t.is(peak, 3);
  t.deepEqual([...done].sort(), [1, 2, 3, 4, 5, 6, 7]);
  const started: number[] = [];
  await t.throwsAsync(
    forEachConcurrently([1, 2, 3, 4, 5], 1, async (item) => {
      started.push(item);
      if (item === 2) throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.deepEqual(started, [1, 2]);
});

test('files, directories and globs expand to a sorted list; hidden and _ files are skipped', async (t) => {
  const dir = await tempDir();
  await mkdir(join(dir, 'b'));
  await mkdir(join(dir, 'a'));
  for (const name of ['b/2.jsonl', 'b/1.parquet', 'a/z.ndjson', 'a/y.JSONL.GZ', 'a/_SUCCESS', 'a/.x.jsonl', 'a/w.parquet.gz', 'a/v.gz', 'notes.txt']) {
    await writeFile(join(dir, name), '');
  }
  const listed = await discoverFiles([dir]);
  t.deepEqual(
    listed.map((file) => [file.path.slice(dir.length + 1), file.format, file.gzip]),
    [
      ['a/y.JSONL.GZ', 'jsonl', true],
      ['a/z.ndjson', 'jsonl', false],
      ['b/1.parquet', 'parquet', false],
      ['b/2.jsonl', 'jsonl', false],
    ],
    'a gzipped JSONL file is found like a plain one; a gzipped Parquet file or a bare .gz is not',
  );
  t.deepEqual(
    (await discoverFiles([join(dir, 'a/v.gz')], 'jsonl')).map((file) => [file.format, file.gzip]),
    [['jsonl', true]],
    '--format jsonl names the format of a bare .gz',
  );
  await t.throwsAsync(discoverFiles([join(dir, 'a/w.parquet.gz')]), { message: /gzipped Parquet file cannot be read/ });
  const globbed = await discoverFiles([join(dir, '*/*.jsonl'), join(dir, 'b/2.jsonl')]);
  t.deepEqual(globbed.map((file) => file.path.slice(dir.length + 1)), ['b/2.jsonl'], 'a file named twice is read once');
  await t.throwsAsync(discoverFiles([join(dir, 'notes.txt')]), { message: /--format/ });
  await t.throwsAsync(discoverFiles([join(dir, 'missing.jsonl')]), { message: /does not exist/ });
  await t.throwsAsync(discoverFiles([join(dir, '*.parquet')]), { message: /matches no/ });
});

test('JSONL lines carry their byte offsets; reading resumes from one; CRLF and a last line without newline', async (t) => {
  const dir = await tempDir();
  const path = join(dir, 'e.jsonl');
  await writeFile(path, 'one\r\ntwo\n\nfour é\nfive');
  const all = [];
  for await (const lines of readJsonlLines({ path, label: path, gzip: false }, { at: 0, next: 0 })) all.push(...lines);
  t.deepEqual(
    all.map((line) => [line.line, line.text]),
    [
      [1, 'one'],
      [2, 'two'],
      [3, ''],
      [4, 'four é'],
      [5, 'five'],
    ],
  );
  const afterTwo = all[1]!;
  const rest = [];
  for await (const lines of readJsonlLines({ path, label: path, gzip: false }, { at: afterTwo.line, next: afterTwo.next })) rest.push(...lines);
  t.deepEqual(rest, all.slice(2));
  t.is(all[4]!.next, (await readFile(path)).length);
});

test('a gzip file reads as the lines of its text, from the start or resumed at a text offset; concatenated members are one text', async (t) => {
  const dir = await tempDir();
  const text = 'one\ntwo\r\nthree\nfour é\n';
  const plain = { path: join(dir, 'e.jsonl'), label: 'e.jsonl', gzip: false };
  const gzip = { path: join(dir, 'e.jsonl.gz'), label: 'e.jsonl.gz', gzip: true };
  await writeFile(plain.path, text);
  // Two members, split inside a line, as `cat a.gz b.gz` or a parallel gzip writes them.
  await writeFile(gzip.path, Buffer.concat([gzipSync(text.slice(0, 6)), gzipSync(text.slice(6))]));
  const read = async (file: typeof plain, from = { at: 0, next: 0 }) => {
    const all = [];
    for await (const lines of readJsonlLines(file, from)) all.push(...lines);
    return all;
  };
  const expected = await read(plain);
  t.deepEqual(
    expected.map((line) => line.text),
    ['one', 'two', 'three', 'four é'],
  );
  t.deepEqual(await read(gzip), expected, 'the same lines, line numbers and offsets (of the text) as the plain file');
  t.deepEqual(await read(gzip, { at: 2, next: expected[1]!.next }), expected.slice(2), 'resumed after line 2');
});

test('a corrupt or cut gzip file fails with a coded error naming it, not as a shorter file', async (t) => {
  const dir = await tempDir();
  const whole = gzipSync('{"a":1}\n'.repeat(1000));
  const cases: [string, Buffer][] = [
    ['cut.jsonl.gz', whole.subarray(0, whole.length - 12)],
    ['not-gzip.jsonl.gz', Buffer.from('{"a":1}\n')],
  ];
  for (const [name, bytes] of cases) {
    const file = { path: join(dir, name), label: name, gzip: true };
    await writeFile(file.path, bytes);
    const reading = (async () => {
      for await (const _ of readJsonlLines(file, { at: 0, next: 0 })) continue;
    })();
    await t.throwsAsync(reading, { instanceOf: TasteError, code: ErrorCodes.EVENT_INVALID, message: new RegExp(`^${name}: not a readable gzip file`) }, name);
    await t.throwsAsync(gunzippedSize(file), { instanceOf: TasteError, code: ErrorCodes.EVENT_INVALID }, `${name}, measured`);
  }
});

test('a line longer than the limit is reported without being held, and the next line is read', async (t) => {
  const dir = await tempDir();
  const path = join(dir, 'long.jsonl');
  await writeFile(path, `a\n${'x'.repeat(5000)}\nb\n${'y'.repeat(5000)}`);
  const all = [];
  for await (const lines of readJsonlLines({ path, label: path, gzip: false }, { at: 0, next: 0 }, 100)) all.push(...lines);
  t.deepEqual(
    all.map((line) => [line.line, line.text]),
    [
      [1, 'a'],
      [2, undefined],
      [3, 'b'],
      [4, undefined],
    ],
  );
});

test('checkpoints are replaced atomically and refuse other options', async (t) => {
  const dir = await tempDir();
  const path = join(dir, 'run.ckpt');
  t.is(await loadCheckpoint(path), undefined);
  const checkpoint: Checkpoint = {
    format: CHECKPOINT_FORMAT,
    fingerprint: fingerprintOf({ a: 1 }),
    modelVersion: 'm1',
    keyPrefix: 'p',
    sources: [{ label: 'a.jsonl', key: 'file/abc:1' }],
    source: 0,
    cursor: { at: 10, next: 300 },
    done: false,
    counts: { records: 10, events: 9, applied: 9, duplicates: 0, invalid: 1, filtered: 0, writes: 3, conflicts: 0, erased: 0, steps: 1 },
    elapsedMs: 5,
    updatedAt: new Date().toISOString(),
  };
  await saveCheckpoint(path, checkpoint);
  await saveCheckpoint(path, { ...checkpoint, source: 1, cursor: null });
  t.deepEqual(await loadCheckpoint(path), { ...checkpoint, source: 1, cursor: null });
  t.deepEqual(await readdir(dir), ['run.ckpt'], 'no temporary file left behind');
  t.is(checkpointMismatch(checkpoint, checkpoint), undefined);
  t.regex(checkpointMismatch(checkpoint, { ...checkpoint, modelVersion: 'm2' }) ?? '', /model version m1/);
  t.regex(checkpointMismatch(checkpoint, { ...checkpoint, sources: [{ label: 'a.jsonl', key: 'file/def:1' }] }) ?? '', /a\.jsonl is not what it was/);
  t.regex(checkpointMismatch(checkpoint, { ...checkpoint, fingerprint: 'x' }) ?? '', /other options/);
  // The shard comes first: another shard's sources differ too, and that would not say why.
  const shard = { ...checkpoint, shard: { index: 1, count: 4 } };
  t.is(checkpointMismatch(shard, shard), undefined);
  t.regex(checkpointMismatch(shard, { ...shard, shard: { index: 2, count: 4 }, sources: [] }) ?? '', /made for shard 1\/4, not shard 2\/4/);
  t.regex(checkpointMismatch(shard, { ...shard, shard: { index: 1, count: 2 } }) ?? '', /made for shard 1\/4, not shard 1\/2/);
  t.regex(checkpointMismatch(shard, checkpoint) ?? '', /made for shard 1\/4, not an unsharded run/);
  t.regex(checkpointMismatch(checkpoint, { ...checkpoint, shard: { index: 0, count: 2 } }) ?? '', /made for an unsharded run, not shard 0\/2/);
  t.is(checkpointMismatch(checkpoint, { ...checkpoint, shard: null }), undefined, 'a checkpoint without a shard (older ones) is unsharded');
  await writeFile(path, '{"format":');
  await t.throwsAsync(loadCheckpoint(path), { message: /not JSON/ });
});

test('file identity: content digests ignore the name; the selection changes the source, not the partition', async (t) => {
  const dir = await tempDir();
  await writeFile(join(dir, 'a.jsonl'), 'same\n');
  await writeFile(join(dir, 'b.jsonl'), 'same\n');
  await writeFile(join(dir, 'c.jsonl'), 'other\n');
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => fileDigest(join(dir, `${name}.jsonl`), 'content')));
  t.is(a, b);
  t.not(a, c);
  t.not(await fileDigest(join(dir, 'a.jsonl'), 'name'), await fileDigest(join(dir, 'b.jsonl'), 'name'));
  const all = fileCoordinates(a!, { minEventTimeMs: 0 });
  const recent = fileCoordinates(a!, { minEventTimeMs: 0, sinceMs: 1000 });
  t.regex(all.topic, /^file\/[0-9a-f]{16}$/);
  t.not(all.topic, recent.topic);
  t.is(all.partition, recent.partition);
  t.true(all.partition >= 0 && all.partition < 65_536);
});

test('LengthGroupedEmbedder runs each window only with windows of its own length, results in order', async (t) => {
  const calls: number[][] = [];
  const inner = {
    embed: async (windows: readonly (readonly WindowEvent[])[]) => {
      calls.push(windows.map((window) => window.length));
      return windows.map((window) => new Float32Array([window.length, window[0]?.offset ?? -1]));
    },
  };
  const window = (length: number, offset: number): WindowEvent[] =>
    Array.from({ length }, () => ({ eventTimeMs: 1, stream: 0, partition: 0, offset, itemId: 2, kind: 1, queryTokens: [] }));
  const out = await new LengthGroupedEmbedder(inner).embed([window(3, 1), window(5, 2), window(3, 3), window(1, 4)]);
  t.deepEqual(out.map((vector) => [...vector]), [
    [3, 1],
    [5, 2],
    [3, 3],
    [1, 4],
  ]);
  for (const call of calls) t.is(new Set(call).size, 1, `one length per call: ${call.join(',')}`);
});

test('DistinctCount is exact for small sets and close for large ones', (t) => {
  const small = new DistinctCount();
  for (let i = 0; i < 1000; i++) small.add(`user-${i % 700}`);
  t.is(small.value, 700);
  t.true(small.exact);
  const large = new DistinctCount();
  for (let i = 0; i < 150_000; i++) large.add(`user-${i}`);
  t.false(large.exact);
  t.true(Math.abs(large.value - 150_000) / 150_000 < 0.03, `estimate ${large.value}`);
});

test('progress: a bar with percent, rate and ETA on a terminal, log lines otherwise; a summary at the end', async (t) => {
  const { ProgressDisplay, formatSummary } = await import('../../backfill/progress.js');
  const { createLogger } = await import('../../common/logger.js');
  const progress = {
    records: 5000,
    events: 4900,
    applied: 4800,
    duplicates: 100,
    invalid: 7,
    filtered: 93,
    writes: 300,
    conflicts: 0,
    erased: 0,
    steps: 2,
    unitsDone: 250,
    unitsTotal: 1000,
    unitsAtStart: 0,
    runMs: 2000,
    elapsedMs: 2000,
    runRecords: 5000,
    runEvents: 4900,
    source: 'a.jsonl',
  };
  let drawn = '';
  const bar = new ProgressDisplay({ write: (text) => (drawn += text), tty: true, logger: createLogger('silent'), columns: 200 });
  bar.update(progress);
  bar.end();
  t.regex(drawn, /^\r█{6}░{18} {2}25\.0% {2}5000 records {2}2450 events\/s {2}applied 4800 {2}dup 100 {2}invalid 7 {2}ETA 6\.0s\x1b\[K\n$/);
  const lines: string[] = [];
  const logged = new ProgressDisplay({ write: () => t.fail('no bar without a terminal'), tty: false, logger: createLogger('info', {}, (line) => lines.push(line)), logEveryMs: 0 });
  logged.update(progress);
  t.is(lines.length, 1);
  t.like(JSON.parse(lines[0]!), { msg: 'progress', percent: 25, eventsPerS: 2450, etaS: 6 });
  const summary = formatSummary({ ...progress, users: 40, usersExact: true, stoppedBy: 'complete', resumed: false }, false);
  t.regex(summary, /backfill complete\n {2}records read {3}5000\n {2}events {9}4900 valid; applied 4800, duplicates skipped 100\n {2}invalid {8}7/);
  t.regex(summary, /users {10}40 in this run, 300 state writes in 2 steps/);
  t.regex(summary, /rate {11}2450 events\/s/);
});
