import test from 'ava';
import { type FlagSpecs, formatHelp, parseFlags, UsageError } from '../../cli/flags.js';

const specs = {
  verbose: { type: 'boolean', env: 'T_VERBOSE', default: false, description: 'talk more' },
  'create-topics': { type: 'boolean', env: 'T_CREATE', default: true, description: 'create topics' },
  level: { type: 'string', env: 'T_LEVEL', default: 'info', choices: ['info', 'warn'], description: 'log level' },
  name: { type: 'string', env: 'T_NAME', description: 'a name' },
  workers: { type: 'integer', env: 'T_WORKERS', default: 2, min: 1, description: 'workers' },
  size: { type: 'integer', env: 'T_SIZE', default: 10, min: 1, max: 100, description: 'size' },
  rate: { type: 'number', env: 'T_RATE', default: 0.5, min: 0, max: 0.9, description: 'rate' },
  user: { type: 'string', multiple: true, description: 'a user; repeatable' },
} as const satisfies FlagSpecs;

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}, positionals = false) => parseFlags(specs, argv, env, { positionals });

test('nothing given: every flag has its default, or undefined, or [] when repeatable', (t) => {
  const { values, help, positionals } = parse([]);
  t.deepEqual(values, { verbose: false, 'create-topics': true, level: 'info', name: undefined, workers: 2, size: 10, rate: 0.5, user: [] });
  t.false(help);
  t.deepEqual(positionals, []);
});

test('--no-<flag> turns a boolean off, and the last of --x / --no-x wins', (t) => {
  t.false(parse(['--no-create-topics']).values['create-topics']);
  t.true(parse(['--no-create-topics', '--create-topics']).values['create-topics']);
  t.false(parse(['--verbose', '--no-verbose']).values.verbose);
  t.true(parse(['--verbose']).values.verbose);
});

test('--no- of a flag that takes a value, or of an unknown flag, is a usage error', (t) => {
  t.throws(() => parse(['--no-name']), { instanceOf: UsageError, message: /Unknown option '--no-name'/ });
  t.throws(() => parse(['--no-such']), { instanceOf: UsageError, message: /Unknown option '--no-such'/ });
});

test('a value after the flag or after =', (t) => {
  t.is(parse(['--name', 'a']).values.name, 'a');
  t.is(parse(['--name=a=b']).values.name, 'a=b');
  t.is(parse(['--name=']).values.name, '', 'an empty value given on the line is a value');
  t.is(parse(['--workers=7']).values.workers, 7);
  t.is(parse(['--name', 'a', '--name', 'b']).values.name, 'b', 'a flag that is not repeatable keeps its last value');
});

test('a repeatable flag keeps every occurrence in order', (t) => {
  t.deepEqual(parse(['--user', 'a', '--user=b,c', '--user', 'd']).values.user, ['a', 'b,c', 'd']);
});

test('positionals are collected where allowed, anywhere on the line and after --', (t) => {
  const { values, positionals } = parse(['x.jsonl', '--verbose', '-', 'y/*.parquet', '--', '--not-a-flag'], {}, true);
  t.deepEqual(positionals, ['x.jsonl', '-', 'y/*.parquet', '--not-a-flag']);
  t.true(values.verbose);
});

test('a positional where none is allowed is a usage error', (t) => {
  t.throws(() => parse(['stray']), { instanceOf: UsageError, message: /Unexpected argument 'stray'/ });
});

test('unknown flags and missing values are usage errors naming the flag', (t) => {
  t.throws(() => parse(['--frobnicate']), { instanceOf: UsageError, message: /Unknown option '--frobnicate'/ });
  t.throws(() => parse(['-x']), { instanceOf: UsageError, message: /Unknown option '-x'/ });
  t.throws(() => parse(['--name']), { instanceOf: UsageError, message: /Option '--name <value>' argument missing/ });
  t.throws(() => parse(['--name', '--verbose']), { instanceOf: UsageError, message: /Option '--name' argument is ambiguous/ });
  t.throws(() => parse(['--verbose=yes']), { instanceOf: UsageError, message: /Option '--verbose' does not take an argument/ });
});

test('the command line beats the environment, which beats the default; an empty variable is unset', (t) => {
  const env = { T_WORKERS: '5', T_LEVEL: 'warn', T_NAME: '', T_CREATE: 'no', T_VERBOSE: 'TRUE' };
  const fromEnv = parse([], env).values;
  t.is(fromEnv.workers, 5);
  t.is(fromEnv.level, 'warn');
  t.is(fromEnv.name, undefined);
  t.false(fromEnv['create-topics'], 'a boolean variable is true only for 1, true or yes');
  t.true(fromEnv.verbose);
  const fromFlags = parse(['--workers', '9', '--level', 'info', '--create-topics', '--no-verbose'], env).values;
  t.is(fromFlags.workers, 9);
  t.is(fromFlags.level, 'info');
  t.true(fromFlags['create-topics']);
  t.false(fromFlags.verbose);
});

test('bad values name where they came from and what is allowed', (t) => {
  t.throws(() => parse(['--workers', 'many']), { instanceOf: UsageError, message: '--workers must be an integer >= 1, got "many"' });
  t.throws(() => parse(['--workers', '1.5']), { instanceOf: UsageError, message: '--workers must be an integer >= 1, got "1.5"' });
  t.throws(() => parse([], { T_WORKERS: '0' }), { instanceOf: UsageError, message: 'T_WORKERS must be an integer >= 1, got "0"' });
  t.throws(() => parse(['--size', '101']), { instanceOf: UsageError, message: '--size must be an integer from 1 to 100, got "101"' });
  t.throws(() => parse(['--rate', '0.95']), { instanceOf: UsageError, message: '--rate must be a number from 0 to 0.9, got "0.95"' });
  t.throws(() => parse(['--rate', 'half']), { instanceOf: UsageError, message: '--rate must be a number from 0 to 0.9, got "half"' });
  t.throws(() => parse([], { T_LEVEL: 'loud' }), { instanceOf: UsageError, message: 'T_LEVEL must be one of info, warn, got "loud"' });
  t.is(parse(['--rate', '.25']).values.rate, 0.25);
  t.is(parse(['--rate', '9e-1']).values.rate, 0.9);
});

test('--help wins over bad values but not over an unparsable line', (t) => {
  const { values, help } = parse(['--workers', 'many', '--help'], { T_LEVEL: 'loud' });
  t.true(help);
  t.is(values.workers, 2, 'with --help the values are the defaults');
  t.true(parse(['-h']).help);
  t.throws(() => parse(['--help', '--frobnicate']), { instanceOf: UsageError });
});

test('help lists every flag with its value, choices, default and variable', (t) => {
  const help = formatHelp('taste x [options]', 'Does x.', specs);
  t.is(
    help,
    [
      'Usage: taste x [options]',
      '',
      'Does x.',
      '',
      'Options:',
      '  --verbose                       talk more (default: false; env: T_VERBOSE)',
      '  --[no-]create-topics            create topics (default: true; env: T_CREATE)',
      '  --level <value>                 log level (one of: info, warn; default: info; env: T_LEVEL)',
      '  --name <value>                  a name (env: T_NAME)',
      '  --workers <n>                   workers (default: 2; env: T_WORKERS)',
      '  --size <n>                      size (default: 10; env: T_SIZE)',
      '  --rate <n>                      rate (default: 0.5; env: T_RATE)',
      '  --user <value>                  a user; repeatable',
      '  -h, --help                      show this help',
    ].join('\n'),
  );
});
