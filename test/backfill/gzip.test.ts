import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { unique } from '../helpers/environment.js';
import type { Checkpoint } from '../../backfill/checkpoint.js';
import { type CliContext, cliEnv, history, killAfterSteps, type Run, stateDigest, taste, withCliContext, writeJsonl } from './helpers.js';

const test = anyTest as TestFn<CliContext>;
withCliContext(test);
const USERS = 40;
const PER_USER = 25;

function ok(t: ExecutionContext<CliContext>, run: Run): Run {
  t.is(run.code, 0, `exit ${run.code} ${run.signal ?? ''}: ${run.stderr}${run.stdout}`);
  return run;
}

/** Window format 2 (featurestore/codec.ts): a 4-byte header, then records of 25 bytes and n u16 tokens, n at byte 24. */
const WINDOW_HEADER = 4;
const RECORD_BYTES = 25;
const PARTITION_AT = 20;

/**
 * A state's bytes with its source written as one placeholder: the window's partition numbers zeroed
 * and the high-water marks' `topic:partition` replaced. Two files with the same lines then hash alike
 * though each is its own source.
 */
function withoutSource(field: string, bytes: Buffer): Buffer {
  if (field === 'hw') return Buffer.from(bytes.toString().replace(/[^;]+:\d+:(\d+)/g, 'SOURCE:$1'));
  if (field !== 'win') return bytes;
  if (bytes[0] !== 2) throw new Error(`window format ${bytes[0]}: the test reads format 2 only`);
  const copy = Buffer.from(bytes);
  let at = WINDOW_HEADER;
  for (let record = 0; record < copy.readUInt16LE(2); record++) {
    copy.writeUInt16LE(0, at + PARTITION_AT);
    at += RECORD_BYTES + 2 * copy[at + 24]!;
  }
  if (at !== copy.length) throw new Error(`window of ${copy.length} bytes, records end at ${at}`);
  return copy;
}

test('a .jsonl.gz file (found in a directory) writes the same state as its text in .jsonl; it is its own source, by its compressed bytes', async (t) => {
  const name = unique('bfgz');
  const plain = join(t.context.dir, `${name}.jsonl`);
  const folder = join(t.context.dir, `${name}-gz`);
  const gzip = join(folder, `${name}.jsonl.gz`);
  await writeJsonl(plain, history(unique('u'), USERS, PER_USER, Date.now() - 10 * 86_400_000));
  await mkdir(folder);
  await writeFile(gzip, gzipSync(await readFile(plain)));

  ok(t, await taste(['backfill', plain, '--key-prefix', `${name}-plain`], cliEnv));
  const gzRun = ok(t, await taste(['backfill', folder, '--key-prefix', `${name}-gz`], cliEnv));
  t.regex(gzRun.stdout, new RegExp(`events +${USERS * PER_USER} valid`), 'every line of the gzip file read');
  const fromPlain = await stateDigest(t.context.redis, `${name}-plain`, withoutSource);
  t.is(fromPlain.keys, 2 * USERS, 'a state and a set of model versions per user');
  t.deepEqual(await stateDigest(t.context.redis, `${name}-gz`, withoutSource), fromPlain, 'the same bytes but for the source');
  const gzState = await stateDigest(t.context.redis, `${name}-gz`);
  t.notDeepEqual(gzState, await stateDigest(t.context.redis, `${name}-plain`), 'the two files are two sources');

  // The identity is the compressed file's bytes: a copy under another name is the same source (nothing applied again),
  // while the same text uncompressed is another source, whose events the same prefix takes a second time.
  const copy = join(t.context.dir, `${name}-copy.jsonl.gz`);
  await copyFile(gzip, copy);
  ok(t, await taste(['backfill', copy, '--key-prefix', `${name}-gz`], cliEnv));
  t.deepEqual(await stateDigest(t.context.redis, `${name}-gz`), gzState, 'a renamed copy applies nothing');
  ok(t, await taste(['backfill', plain, '--key-prefix', `${name}-gz`], cliEnv));
  t.notDeepEqual(await stateDigest(t.context.redis, `${name}-gz`), gzState, 'the uncompressed text is applied as a new source');
});

test('a corrupt or cut .jsonl.gz file fails with a coded error naming it, before anything is written', async (t) => {
  const name = unique('bfgz');
  const good = join(t.context.dir, `${name}-good.jsonl.gz`);
  const whole = gzipSync(await readFile(await plainFile(t, name)));
  await writeFile(good, whole);
  const cases: [string, Buffer][] = [
    [`${name}-cut.jsonl.gz`, whole.subarray(0, Math.floor(whole.length / 2))],
    [`${name}-flipped.jsonl.gz`, Buffer.concat([whole.subarray(0, 100), Buffer.from([whole[100]! ^ 0xff]), whole.subarray(101)])],
  ];
  for (const [file, bytes] of cases) {
    const path = join(t.context.dir, file);
    await writeFile(path, bytes);
    // The good file first: its events would be written if the bad one were found only when its turn came.
    const run = await taste(['backfill', good, path, '--key-prefix', `${name}-${file}`], cliEnv);
    t.is(run.code, 1, `${file}: ${run.stderr}${run.stdout}`);
    t.regex(run.stderr, new RegExp(`${file}: not a readable gzip file \\(.+\\).*\\[TASTE_EVENT_INVALID\\]`), file);
    t.is((await stateDigest(t.context.redis, `${name}-${file}`)).keys, 0, `${file}: nothing written`);
  }
});

test('a .jsonl.gz backfill killed with SIGKILL and resumed from its checkpoint ends byte-identical to an uninterrupted run', async (t) => {
  const name = unique('bfgz');
  const gzip = join(t.context.dir, `${name}.jsonl.gz`);
  const events = history(unique('u'), 160, 30, Date.now() - 10 * 86_400_000);
  const plain = join(t.context.dir, `${name}-text.jsonl`);
  await writeJsonl(plain, events);
  await writeFile(gzip, gzipSync(await readFile(plain)));
  // Small steps, so that the kill lands with most of the file still to read.
  const args = ['backfill', gzip, '--chunk-size', '100', '--batch-size', '64'];
  ok(t, await taste([...args, '--key-prefix', `${name}-whole`], cliEnv));
  const expected = await stateDigest(t.context.redis, `${name}-whole`);

  const checkpoint = join(t.context.dir, `${name}.ckpt`);
  const resumable = [...args, '--key-prefix', `${name}-resumed`, '--checkpoint', checkpoint];
  const killer = killAfterSteps(checkpoint, 2);
  const first = await taste(resumable, cliEnv, killer.onSpawn);
  t.is(first.signal, 'SIGKILL', `killed mid-way (exit ${first.code}): ${first.stdout}${first.stderr}`);
  const killedAt = JSON.parse(await readFile(checkpoint, 'utf8')) as Checkpoint;
  t.false(killedAt.done, 'killed before its end');
  const second = ok(t, await taste(resumable, cliEnv));
  // The second run starts at the checkpoint's text offset: it reads exactly the lines the first had not checkpointed.
  t.regex(second.stdout, new RegExp(`records read +${events.length} \\(all runs of this checkpoint; ${events.length - killedAt.counts.records} in this run\\)`));
  t.deepEqual(await stateDigest(t.context.redis, `${name}-resumed`), expected);
});

async function plainFile(t: ExecutionContext<CliContext>, name: string): Promise<string> {
  const path = join(t.context.dir, `${name}.jsonl`);
  await writeJsonl(path, history(unique('u'), USERS, PER_USER, Date.now() - 10 * 86_400_000));
  return path;
}
