import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, resolve, sep } from 'node:path';
import { ErrorCodes, TasteError } from '../common/errors.js';

export const FileFormats = { JSONL: 'jsonl', PARQUET: 'parquet' } as const;
export type FileFormat = (typeof FileFormats)[keyof typeof FileFormats];

/** A file to read, in the order the backfill reads it. */
export interface DiscoveredFile {
  path: string;
  format: FileFormat;
  bytes: number;
}

const EXTENSIONS: Record<string, FileFormat> = {
  '.jsonl': FileFormats.JSONL,
  '.ndjson': FileFormats.JSONL,
  '.json': FileFormats.JSONL,
  '.parquet': FileFormats.PARQUET,
  '.pq': FileFormats.PARQUET,
};

const GLOB_CHARS = /[*?[]/;

export function formatOf(path: string, forced: FileFormat | undefined): FileFormat | undefined {
  return forced ?? EXTENSIONS[extname(path).toLowerCase()];
}

/**
 * Expands files, directories (every .jsonl/.ndjson/.json/.parquet file below, recursively) and
 * globs (`*`, `?`, `[...]`, `**`) into a list of files. Each argument's files are sorted by path
 * (byte order), arguments keep their order, a file named twice is read once: the same arguments
 * always give the same list, which the checkpoint and the file identities rely on. Hidden and
 * `_`-prefixed names (`_SUCCESS`, `.crc`) under a directory are skipped.
 */
export async function discoverFiles(inputs: readonly string[], forced?: FileFormat): Promise<DiscoveredFile[]> {
  const seen = new Set<string>();
  const files: DiscoveredFile[] = [];
  for (const input of inputs) {
    const matches = GLOB_CHARS.test(input) ? await expandGlob(input) : await expandPath(input);
    if (matches.length === 0) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" matches no ${forced ?? 'JSONL or Parquet'} file`);
    }
    for (const path of matches.sort(byteOrder)) {
      if (seen.has(path)) continue;
      seen.add(path);
      const format = formatOf(path, forced);
      if (!format) {
        throw new TasteError(
          ErrorCodes.CONFIG_INVALID,
          `cannot tell the format of ${path} from its extension (.jsonl, .ndjson, .json, .parquet): name it with --format`,
        );
      }
      files.push({ path, format, bytes: (await stat(path)).size });
    }
  }
  return files;
}

async function expandPath(input: string): Promise<string[]> {
  const path = resolve(input);
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" does not exist`, { cause });
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" is neither a file nor a directory`);
  return (await walk(path)).filter((file) => EXTENSIONS[extname(file).toLowerCase()] !== undefined);
}

async function expandGlob(pattern: string): Promise<string[]> {
  const absolute = resolve(pattern);
  const parts = absolute.split(sep);
  const firstGlob = parts.findIndex((part) => GLOB_CHARS.test(part));
  const base = parts.slice(0, firstGlob).join(sep) || sep;
  const matcher = globToRegExp(parts.slice(firstGlob).join('/'));
  let files: string[];
  try {
    files = await walk(base);
  } catch (cause) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `glob "${pattern}": cannot read directory ${base}`, { cause });
  }
  return files.filter((file) => matcher.test(relative(base, file).split(sep).join('/')));
}

async function walk(directory: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(directory, { withFileTypes: true });
  for (const entry of entries) {
    if (entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** `*` and `?` stay within a path segment, `**` spans segments, `[...]` is a character class. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === '*') {
      if (glob[i + 1] === '*') {
        const slash = glob[i + 2] === '/';
        source += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) {
        source += '\\[';
      } else {
        const body = glob.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = close;
      }
    } else {
      source += char.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function displayName(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') ? rel : path;
}
