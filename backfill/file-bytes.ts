import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { ErrorCodes, TasteError } from '../common/errors.js';

/** Read size: large enough that a read costs little next to the parse of its lines. */
const READ_BYTES = 1 << 20;

/** A file's text bytes: as stored, or through gunzip (`.gz`). */
export interface FileBytes {
  path: string;
  /** What errors call the file. */
  label: string;
  gzip: boolean;
}

/**
 * The file's text from byte `start` on, in chunks. For a gzip file `start` counts text (decompressed)
 * bytes: deflate cannot be entered in the middle, so the file is decompressed from its beginning and
 * the first `start` bytes dropped — a resumed run pays for decompressing what it skips, not for
 * parsing it. A gzip stream that is corrupt or cut short throws a TasteError naming the file,
 * instead of ending early as if the file were shorter.
 */
export async function* readFileBytes(file: FileBytes, start: number): AsyncGenerator<Buffer> {
  if (!file.gzip) {
    const stream = createReadStream(file.path, { start, highWaterMark: READ_BYTES });
    try {
      yield* stream as AsyncIterable<Buffer>;
    } finally {
      stream.destroy();
    }
    return;
  }
  let skip = start;
  for await (const chunk of gunzipped(file)) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    yield skip > 0 ? chunk.subarray(skip) : chunk;
    skip = 0;
  }
}

/**
 * The decompressed size of a gzip file, read through once: its progress total (the gzip trailer
 * holds the size modulo 4 GiB of the last member only), and a check before any write that the
 * whole file decompresses.
 */
export async function gunzippedSize(file: Omit<FileBytes, 'gzip'>): Promise<number> {
  let bytes = 0;
  for await (const chunk of gunzipped({ ...file, gzip: true })) bytes += chunk.length;
  return bytes;
}

async function* gunzipped(file: FileBytes): AsyncGenerator<Buffer> {
  const raw = createReadStream(file.path, { highWaterMark: READ_BYTES });
  // Node's gunzip reads concatenated members (as `cat a.gz b.gz` and pigz write them) as one text.
  const gunzip = createGunzip({ chunkSize: READ_BYTES });
  // A read error of the file is the gunzip stream's error, so the loop below sees both.
  raw.on('error', (error) => gunzip.destroy(error));
  raw.pipe(gunzip);
  try {
    yield* gunzip as AsyncIterable<Buffer>;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== undefined && code.startsWith('Z_')) {
      throw new TasteError(ErrorCodes.EVENT_INVALID, `${file.label}: not a readable gzip file (${(cause as Error).message}); see docs/backfill.md`, { cause });
    }
    throw cause;
  } finally {
    raw.destroy();
    gunzip.destroy();
  }
}
