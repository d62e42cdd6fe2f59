import { parseArgs } from 'node:util';

/**
 * Flags with environment fallbacks, declared once: parsing, validation and --help come from the
 * same table. Only CLI entry points read the environment.
 */
export interface FlagSpec {
  type: 'string' | 'integer' | 'boolean';
  description: string;
  env?: string;
  default?: string | number | boolean;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Smallest allowed value for an integer flag. @default 0 */
  min?: number;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S['type'] extends 'integer' ? number : S['type'] extends 'boolean' ? boolean : string;
export type FlagValues<S extends FlagSpecs> = { [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseFlags<S extends FlagSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { values: FlagValues<S>; help: boolean } {
  // `--no-<flag>` turns a boolean off (node:util parseArgs on Node 20 has no allowNegative).
  const negated = new Set<string>();
  const args = argv.filter((arg) => {
    const name = arg.startsWith('--no-') ? arg.slice(5) : undefined;
    if (name === undefined || specs[name]?.type !== 'boolean') return true;
    negated.add(name);
    return false;
  });
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(
          Object.entries(specs).map(([name, spec]) => [name, { type: spec.type === 'boolean' ? ('boolean' as const) : ('string' as const) }]),
        ),
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const raw = parsed.values as Record<string, string | boolean | undefined>;
  for (const name of negated) raw[name] = false;
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const given = raw[name] ?? (fromEnv === '' ? undefined : fromEnv);
    const source = raw[name] !== undefined ? `--${name}` : `${spec.env}`;
    if (given === undefined) {
      values[name] = spec.default;
      continue;
    }
    if (spec.type === 'boolean') {
      values[name] = typeof given === 'boolean' ? given : ['1', 'true', 'yes'].includes(given.toLowerCase());
    } else if (spec.type === 'integer') {
      const number = Number(given);
      const min = spec.min ?? 0;
      if (!Number.isSafeInteger(number) || number < min) {
        throw new UsageError(`${source} must be an integer >= ${min}, got "${String(given)}"`);
      }
      values[name] = number;
    } else {
      const text = String(given);
      if (spec.choices && !spec.choices.includes(text)) {
        throw new UsageError(`${source} must be one of ${spec.choices.join(', ')}, got "${text}"`);
      }
      values[name] = text;
    }
  }
  return { values: values as FlagValues<S>, help: raw.help === true };
}

export function formatHelp(usage: string, summary: string, specs: FlagSpecs): string {
  const lines = [`Usage: ${usage}`, '', summary, '', 'Options:'];
  for (const [name, spec] of Object.entries(specs)) {
    const value = spec.type === 'boolean' ? '' : spec.type === 'integer' ? ' <n>' : ' <value>';
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
