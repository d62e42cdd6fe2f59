import { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, relative, resolve, sep } from 'node:path';
import { glob } from 'tinyglobby';
import { ErrorCodes, TasteError } from '../common/errors.js';

export const FileFormats = { JSONL: 'jsonl', PARQUET: 'parquet' } as const;
export type FileFormat = (typeof FileFormats)[keyof typeof FileFormats];

/** A file to read, in the order the backfill reads it. */
export interface DiscoveredFile {
  path: string;
  format: FileFormat;
  /** A `.gz` name: read through gunzip. */
  gzip: boolean;
  /** The file's size on disk (compressed, for a gzip file). */
  bytes: number;
}

/** By the extension before `.gz` for a gzip file. */
const EXTENSIONS: Record<string, FileFormat> = {
  '.jsonl': FileFormats.JSONL,
  '.ndjson': FileFormats.JSONL,
  '.json': FileFormats.JSONL,
  '.parquet': FileFormats.PARQUET,
  '.pq': FileFormats.PARQUET,
};

/** Any character that makes a path segment a pattern for tinyglobby (picomatch): wildcards, classes, braces, extglobs. */
const GLOB_CHARS = /[*?[\]{}()!+@]/;

/** Spark's and Hadoop's markers (`_SUCCESS`, `_temporary/`); hidden names are left out by `dot: false`. */
const SKIPPED = ['**/_*', '**/_*/**'];

const GZIP = '.gz';

export function isGzip(path: string): boolean {
  return extname(path).toLowerCase() === GZIP;
}

/** The extension that names the format: `.jsonl` of `day.jsonl` and of `day.jsonl.gz`. */
function formatExtension(path: string): string {
  const name = isGzip(path) ? path.slice(0, -GZIP.length) : path;
  return extname(name).toLowerCase();
}

export function formatOf(path: string, forced: FileFormat | undefined): FileFormat | undefined {
  return forced ?? EXTENSIONS[formatExtension(path)];
}

/**
 * Expands files, directories (every .jsonl/.ndjson/.json/.parquet file below, and the first three
 * gzipped: .jsonl.gz and so on, recursively) and
 * globs (tinyglobby: `*`, `?`, `[...]`, `**`, braces `{a,b}` and `{1..3}`) into a list of files. An
 * input that names an existing file or directory is that path, whatever characters its name holds.
 * Each argument's files are sorted by path (byte order), arguments keep their order: the same
 * arguments always give the same list, which the checkpoint and the file identities rely on.
 * Hidden and `_`-prefixed names (`_SUCCESS`, `.crc`) under a directory or a glob's base are skipped.
 *
 * Symlinks are followed: a linked file is read under the link's name, a linked directory is walked
 * like a real one, and a link back to an ancestor is walked at most once round (fdir stops at the
 * repeat) instead of looping. A file reached twice — named twice, or by its name and through a
 * link — is read once (under the first argument's name; within one argument, the shortest name),
 * so no event is applied twice under two identities. A dangling link matches nothing.
 */
export async function discoverFiles(inputs: readonly string[], forced?: FileFormat): Promise<DiscoveredFile[]> {
  const seen = new Set<string>();
  const files: DiscoveredFile[] = [];
  for (const input of inputs) {
    const matches = await expandInput(input);
    if (matches.length === 0) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" matches no ${forced ?? 'JSONL or Parquet'} file`);
    }
    for (const { path, real } of await distinctFiles(matches, seen)) {
      const format = formatOf(path, forced);
      if (!format) {
        throw new TasteError(
          ErrorCodes.CONFIG_INVALID,
          `cannot tell the format of ${path} from its extension (.jsonl, .ndjson, .json, .parquet, the first three with .gz): name it with --format`,
        );
      }
      const gzip = isGzip(path);
      if (gzip && format === FileFormats.PARQUET) {
        // Parquet compresses its pages itself; a gzipped Parquet file would have to be unpacked whole before its footer is read.
        throw new TasteError(ErrorCodes.CONFIG_INVALID, `${path}: a gzipped Parquet file cannot be read; gunzip it first (Parquet's own page compression is read)`);
      }
      files.push({ path, format, gzip, bytes: (await stat(real)).size });
    }
  }
  return files;
}

/**
 * One name per file not `seen` yet, in byte order of the names. Links are followed, so one file can
 * be reached by several names: the shortest (fewest segments, then byte order) is kept, which is the
 * direct one when the file is also reached through a link cycle.
 */
async function distinctFiles(paths: readonly string[], seen: Set<string>): Promise<{ path: string; real: string }[]> {
  const nameByReal = new Map<string, string>();
  for (const path of [...paths].sort(shortestFirst)) {
    const real = await realpath(path);
    if (!seen.has(real) && !nameByReal.has(real)) nameByReal.set(real, path);
  }
  for (const real of nameByReal.keys()) seen.add(real);
  return [...nameByReal].map(([real, path]) => ({ path, real })).sort((a, b) => byteOrder(a.path, b.path));
}

async function expandInput(input: string): Promise<string[]> {
  const path = resolve(input);
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    if (GLOB_CHARS.test(input)) return expandGlob(input, path);
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" does not exist`, { cause });
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) throw new TasteError(ErrorCodes.CONFIG_INVALID, `input "${input}" is neither a file nor a directory`);
  return (await walk(path, '**/*')).filter(isDiscovered);
}

/** What a directory's walk takes: the known extensions, and the JSONL ones gzipped. */
function isDiscovered(path: string): boolean {
  const format = EXTENSIONS[formatExtension(path)];
  return format !== undefined && !(isGzip(path) && format === FileFormats.PARQUET);
}

/** The glob is matched below its literal leading directories, so the skipped names are relative to that base. */
async function expandGlob(input: string, absolute: string): Promise<string[]> {
  const parts = absolute.split(sep);
  const firstGlob = parts.findIndex((part) => GLOB_CHARS.test(part));
  const base = parts.slice(0, firstGlob).join(sep) || sep;
  const info = await stat(base).catch((cause: unknown) => cause);
  if (!(info instanceof Stats) || !info.isDirectory()) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `glob "${input}": cannot read directory ${base}`, info instanceof Stats ? {} : { cause: info });
  }
  return walk(base, parts.slice(firstGlob).join('/'));
}

function walk(cwd: string, pattern: string): Promise<string[]> {
  return glob(pattern, { cwd, absolute: true, onlyFiles: true, dot: false, followSymbolicLinks: true, expandDirectories: false, ignore: SKIPPED });
}

function shortestFirst(a: string, b: string): number {
  return a.split(sep).length - b.split(sep).length || byteOrder(a, b);
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function displayName(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') ? rel : path;
}
