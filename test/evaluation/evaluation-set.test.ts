import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TasteError } from '../../common/errors.js';
import { readEvaluationSet } from '../../evaluation/evaluation-set.js';

const summary = { dataset: 'sim', model_version: 'v1', max_seq_len: 50, users: 2, events: 5, oldest_event_time_ms: 0, offline: { full: { 'HR@10': 0.5 } }, training_run: null, command: 'x' };
const goodCase = (userId: string) => JSON.stringify({ userId, events: 2, target: 3, mask: [2], negatives: [], offlineRankFull: 4, offlineRankSampled: null, offlineEmbedding: [0.6, 0.8] });

async function setDirectory(cases: string[], offline: object = summary): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'taste-eval-set-'));
  await writeFile(join(dir, 'offline.json'), JSON.stringify(offline));
  await writeFile(join(dir, 'cases.jsonl'), `${cases.join('\n')}\n`);
  await writeFile(join(dir, 'events.jsonl'), '');
  return dir;
}

test('a set written by pipeline_eval is read with its cases in order', async (t) => {
  const set = await readEvaluationSet(await setDirectory([goodCase('a'), goodCase('b')]));
  t.deepEqual(set.cases.map((c) => c.userId), ['a', 'b']);
  t.is(set.summary.model_version, 'v1');
  t.true(set.eventsPath.endsWith('events.jsonl'));
});

test('a bad case is refused with its file and line', async (t) => {
  const bad = JSON.stringify({ userId: 'b', events: 2, target: -1, mask: [], negatives: [], offlineRankFull: 0, offlineRankSampled: null, offlineEmbedding: [0, 1] });
  const error = await t.throwsAsync(readEvaluationSet(await setDirectory([goodCase('a'), bad])), { instanceOf: TasteError });
  t.regex(error?.message ?? '', /cases\.jsonl:2: "target" must be a non-negative integer/);
});

test('embeddings of different lengths, a repeated user or a wrong user count are refused', async (t) => {
  const short = JSON.stringify({ ...JSON.parse(goodCase('b')), offlineEmbedding: [1] });
  await t.throwsAsync(readEvaluationSet(await setDirectory([goodCase('a'), short])), { message: /cases\.jsonl:2: "offlineEmbedding" must be 2 numbers/ });
  await t.throwsAsync(readEvaluationSet(await setDirectory([goodCase('a'), goodCase('a')])), { message: /a user appears twice/ });
  await t.throwsAsync(readEvaluationSet(await setDirectory([goodCase('a')])), { message: /has 1 users, .*offline\.json says 2/ });
});

test('a directory without offline.json says what it expected', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'taste-eval-set-'));
  await t.throwsAsync(readEvaluationSet(dir), { message: /offline\.json: is this a directory written by python -m taste_training\.pipeline_eval\?/ });
});
