import { ErrorCodes, TasteError } from '../common/errors.js';
import { parseArgs } from 'node:util';

/**
 * Flags with environment fallbacks, declared once: parsing, validation and --help come from the
 * same table. node:util's parseArgs does the parsing (`--no-<flag>`, `--flag=value`, repeated
 * flags, positionals); this module adds the environment, defaults and value checks. Only CLI
 * entry points read the environment.
 */
export interface FlagSpec {
  type: 'string' | 'integer' | 'number' | 'boolean';
  description: string;
  env?: string;
  default?: string | number | boolean;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Smallest allowed value for an integer or number flag. @default 0 */
  min?: number;
  /** Largest allowed value for an integer or number flag. @default none */
  max?: number;
  /** A string flag that may be given several times; its value is every occurrence, in order. */
  multiple?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S['type'] extends 'integer' | 'number' ? number : S['type'] extends 'boolean' ? boolean : string;
export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends { multiple: true } ? string[] : S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

export interface ParsedFlags<S extends FlagSpecs> {
  /** With `help`, only the defaults: the command prints its help and reads nothing else. */
  values: FlagValues<S>;
  help: boolean;
  /** The arguments that are not flags (after `--`, everything); empty unless `positionals` was asked for. */
  positionals: string[];
}

/** A flag or environment variable the command cannot use: exit code 2, and the message names it. */
export class UsageError extends TasteError {
  constructor(message: string) {
    super(ErrorCodes.USAGE, message);
    this.name = 'UsageError';
  }
}

/**
 * Parses `argv` against `specs`. A flag on the command line beats its environment variable, which
 * beats the default; an empty variable counts as unset. Unknown flags, a flag without its value,
 * or a positional where none is allowed are a UsageError; so is a bad value, unless --help was
 * given (help wins over everything but an unparsable line).
 */
export function parseFlags<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { positionals?: boolean } = {},
): ParsedFlags<S> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: options.positionals === true,
      allowNegative: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(
          Object.entries(specs).map(([name, spec]) => [name, { type: spec.type === 'boolean' ? ('boolean' as const) : ('string' as const), multiple: spec.multiple === true }]),
        ),
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const help = raw.help === true;
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const fromEnv = spec.env && !help ? env[spec.env] : undefined;
    const given = help ? undefined : (raw[name] ?? (fromEnv === '' ? undefined : fromEnv));
    const source = raw[name] !== undefined ? `--${name}` : `${spec.env}`;
    if (spec.multiple) {
      values[name] = (given === undefined ? [] : Array.isArray(given) ? given : [given]).map((one) => convert(spec, String(one), source));
    } else {
      values[name] = given === undefined ? spec.default : convert(spec, given as string | boolean, source);
    }
  }
  return { values: values as FlagValues<S>, help, positionals: parsed.positionals };
}

/** One value of a flag, checked against its spec; `source` names the flag or variable it came from. */
function convert(spec: FlagSpec, given: string | boolean, source: string): string | number | boolean {
  if (spec.type === 'boolean') return typeof given === 'boolean' ? given : ['1', 'true', 'yes'].includes(given.toLowerCase());
  const text = String(given);
  if (spec.type === 'integer' || spec.type === 'number') {
    const number = spec.type === 'integer' ? Number(text) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text.trim()) ? Number(text) : Number.NaN;
    const min = spec.min ?? 0;
    const valid = (spec.type === 'integer' ? Number.isSafeInteger(number) : Number.isFinite(number)) && number >= min && number <= (spec.max ?? Number.POSITIVE_INFINITY);
    if (!valid) {
      const range = spec.max === undefined ? `>= ${min}` : `from ${min} to ${spec.max}`;
      throw new UsageError(`${source} must be ${spec.type === 'integer' ? 'an integer' : 'a number'} ${range}, got "${text}"`);
    }
    return number;
  }
  if (spec.choices && !spec.choices.includes(text)) {
    throw new UsageError(`${source} must be one of ${spec.choices.join(', ')}, got "${text}"`);
  }
  return text;
}

export function formatHelp(usage: string, summary: string, specs: FlagSpecs): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options:'];
  for (const [name, spec] of Object.entries(specs)) {
    const value = spec.type === 'boolean' ? '' : spec.type === 'integer' || spec.type === 'number' ? ' <n>' : ' <value>';
    const flag = spec.type === 'boolean' && spec.default === true ? `--[no-]${name}` : `--${name}`;
    const extras = [
      spec.choices ? `one of: ${spec.choices.join(', ')}` : undefined,
      spec.default !== undefined && spec.default !== '' ? `default: ${String(spec.default)}` : undefined,
      spec.env ? `env: ${spec.env}` : undefined,
    ].filter(Boolean);
    lines.push(`  ${flag}${value}`.padEnd(34) + spec.description + (extras.length ? ` (${extras.join('; ')})` : ''));
  }
  lines.push('  -h, --help'.padEnd(34) + 'show this help');
  return lines.join('\n');
}
