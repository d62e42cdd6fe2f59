import test from 'ava';
import { UsageError } from '../../cli/flags.js';
import { parseDuration } from '../../cli/options.js';
import { runRolloutCommand } from '../../cli/rollout-command.js';

// Bad input to `taste rollout` is a UsageError naming what to fix, before any connection is made
// (the Redis URL below answers nothing: reaching it would be a different error).

const ENV = { TASTE_REDIS_URL: 'redis://127.0.0.1:1' };

test('durations take a unit, or whole milliseconds', (t) => {
  t.is(parseDuration('24h', '--x'), 86_400_000);
  t.is(parseDuration('90s', '--x'), 90_000);
  t.is(parseDuration('15m', '--x'), 900_000);
  t.is(parseDuration('7d', '--x'), 604_800_000);
  t.is(parseDuration('1.5h', '--x'), 5_400_000);
  t.is(parseDuration('250ms', '--x'), 250);
  t.is(parseDuration('5000', '--x'), 5000);
  for (const bad of ['', 'soon', '0', '0h', '-1h', '1.5', '24 hours', 'h']) {
    t.throws(() => parseDuration(bad, '--active-within'), { instanceOf: UsageError, message: /^--active-within must be a positive duration/ }, bad);
  }
});

test('taste rollout refuses bad input with a message that names the fix', async (t) => {
  const cases: [string[], RegExp][] = [
    [['bogus'], /unknown subcommand "bogus": use set-default or status/],
    [['set-default'], /name the version to make the default/],
    [['set-default', ''], /VERSION is empty/],
    [['set-default', 'a', 'b'], /one version only, got 2/],
    [['set-default', 'has space'], /VERSION "has space" is not a model version/],
    [['set-default', 'v2', '--min-coverage', '1.5'], /--min-coverage must be a number from 0 to 1, got "1.5"/],
    [['set-default', 'v2', '--active-within', 'soon'], /--active-within must be a positive duration/],
    [['set-default', 'v2', '--from', ''], /--from is empty/],
    [['set-default', 'v2', '--no-such-flag'], /no-such-flag/],
    [['status', 'extra'], /Unexpected argument 'extra'/],
    [['status', '--versions', 'a,b c'], /--versions "b c" is not a model version/],
    [['status', '--quality-hours', '500'], /--quality-hours must be an integer from 1 to 192/],
  ];
  for (const [argv, message] of cases) {
    await t.throwsAsync(runRolloutCommand(argv, ENV), { instanceOf: UsageError, message }, argv.join(' '));
  }
});

test('--help needs no Redis, for the command and each subcommand', async (t) => {
  t.is(await runRolloutCommand(['--help'], ENV), 0);
  t.is(await runRolloutCommand(['set-default', '--help'], ENV), 0);
  t.is(await runRolloutCommand(['status', '-h'], ENV), 0);
  t.is(await runRolloutCommand([], ENV), 2);
});
