import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { UsageError } from '../../cli/flags.js';
import { runSimulateCommand } from '../../cli/simulate-command.js';
import { readEventsJsonl } from '../../events/jsonl.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        callback();
      },
    }),
    text: () => chunks.join(''),
  };
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runSimulateCommand(argv, env, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

let dir: string;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'taste-simulate-cli-'));
});
test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('--help prints usage and exits 0', async (t) => {
  const { code, stdout, stderr } = await run(['--help']);
  t.is(code, 0);
  t.regex(stdout, /^Usage: taste simulate/);
  for (const flag of ['--users', '--items', '--seed', '--days', '--out', '--catalogue-out', '--tastes-out']) t.true(stdout.includes(flag), flag);
  t.is(stderr, '');
  t.is((await run(['-h', '--users', 'nonsense'])).code, 0, 'help wins over other flags');
});

// Usage errors are thrown as UsageError; cli/main.ts prints them with a pointer to --help and
// exits 2, for every command alike (test/cli/cli.test.ts runs that path).
test('an unknown flag is a usage error naming it', async (t) => {
  await t.throwsAsync(run(['--userz', '5']), { instanceOf: UsageError, message: /--userz/ });
});

test('bad values are usage errors naming the flag, or the variable they came from', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--users', 'abc'], /--users must be an integer from 1/],
    [['--users', '0'], /--users must be an integer from 1/],
    [['--items', '10'], /--items must be an integer from 200/],
    [['--days', '0'], /--days must be a number/],
    [['--days=-1'], /--days must be a number/],
    [['--start', 'yesterday'], /--start must be an ISO 8601 time/],
    [['--search-rate', '1.5'], /--search-rate must be a number from 0 to 0.9/],
    [['--out', ''], /--out must be a file path/],
    [['--seed='], /--seed must not be empty/],
    [['stray'], /positional|Unexpected argument/i],
  ];
  for (const [argv, message] of cases) {
    await t.throwsAsync(run(argv), { instanceOf: UsageError, message }, argv.join(' '));
  }
  await t.throwsAsync(run([], { TASTE_SIMULATE_USERS: 'lots' }), { instanceOf: UsageError, message: /^TASTE_SIMULATE_USERS must be an integer from 1 to 100000000, got "lots"$/ });
});

test('the environment sets what the command line does not', async (t) => {
  const fromEnv = await run(['--days', '1', '--quiet'], { TASTE_SIMULATE_USERS: '3', TASTE_SIMULATE_SEED: 'env-seed', TASTE_SIMULATE_DAYS: '9' });
  const fromFlags = await run(['--users', '3', '--seed', 'env-seed', '--days', '1', '--quiet']);
  t.is(fromEnv.code, 0);
  t.is(fromEnv.stdout, fromFlags.stdout, '--days 1 beats TASTE_SIMULATE_DAYS=9; the variables give users and seed');
  const users = new Set(fromEnv.stdout.trimEnd().split('\n').map((line) => (JSON.parse(line) as { userId: string }).userId));
  t.true(users.size > 0 && users.size <= 3);
});

test('writes events, catalogue and tastes; same seed, same bytes', async (t) => {
  const args = (suffix: string): string[] => [
    '--users', '40', '--items', '400', '--days', '2', '--seed', 'demo',
    '--out', join(dir, `events-${suffix}.jsonl`),
    '--catalogue-out', join(dir, `catalogue-${suffix}.tsv`),
    '--tastes-out', join(dir, `tastes-${suffix}.jsonl`),
  ];
  const first = await run(args('a'));
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /wrote \d+ events for 40 users/);
  t.regex(first.stderr, /skipped/);
  const second = await run([...args('b'), '--quiet']);
  t.is(second.code, 0);
  t.is(second.stderr, '');

  const a = await readFile(join(dir, 'events-a.jsonl'), 'utf8');
  t.is(a, await readFile(join(dir, 'events-b.jsonl'), 'utf8'));
  t.is((await readFile(join(dir, 'catalogue-a.tsv'), 'utf8')).trimEnd().split('\n').length, 400);
  t.is((await readFile(join(dir, 'tastes-a.jsonl'), 'utf8')).trimEnd().split('\n').length, 40);
  let n = 0;
  for await (const _ of readEventsJsonl(join(dir, 'events-a.jsonl'))) n++;
  t.true(n > 50);
});

test('--out - (the default) writes to standard output', async (t) => {
  const { code, stdout } = await run(['--users', '5', '--days', '1', '--quiet']);
  t.is(code, 0);
  const lines = stdout.trimEnd().split('\n');
  t.true(lines.length > 0);
  t.regex(lines[0]!, /^\{"type":"(play|search)"/);
});

test('an unwritable output exits 1 with the reason', async (t) => {
  const { code, stderr } = await run(['--users', '5', '--days', '1', '--out', join(dir, 'no', 'such', 'dir.jsonl')]);
  t.is(code, 1);
  t.regex(stderr, /failed: .*ENOENT/);
});
