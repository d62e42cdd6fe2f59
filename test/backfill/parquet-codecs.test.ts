import anyTest, { type TestFn } from 'ava';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadataAsync, asyncBufferFromFile } from 'hyparquet';
import { fileCoordinates } from '../../backfill/file-identity.js';
import { ParquetSource } from '../../backfill/parquet-source.js';
import type { SourceRecord } from '../../backfill/source.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { EventFeaturizer } from '../../events/featurizer.js';
import { loadModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';
import { history, tempDir, writeParquet } from './helpers.js';

const test = anyTest as TestFn<{ dir: string; featurizer: EventFeaturizer }>;
const coordinates = fileCoordinates('a'.repeat(64), { minEventTimeMs: 0 });
const NOW = Date.now();
// Seven users' interleaved histories, with plays and searches (nulls where a field does not apply).
const events = history('codec', 7, 60, NOW - 3_600_000);

test.before(async (t) => {
  const { vocabulary, metadata } = await loadModelBundle(DEFAULT_MODEL_DIR);
  t.context = { dir: await tempDir(), featurizer: new EventFeaturizer({ vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets }) };
});

async function readAll(t: { context: { featurizer: EventFeaturizer } }, path: string): Promise<SourceRecord['outcome'][]> {
  const source = await ParquetSource.open({ path, label: path, coordinates, featurizer: t.context.featurizer, filter: {}, nowMs: NOW });
  const outcomes: SourceRecord['outcome'][] = [];
  for await (const batch of source.read(source.start)) outcomes.push(...batch.map((record) => record.outcome));
  return outcomes;
}

async function codecsOf(path: string): Promise<string[]> {
  const metadata = await parquetMetadataAsync(await asyncBufferFromFile(path));
  return [...new Set(metadata.row_groups.flatMap((group) => group.columns.map((chunk) => chunk.meta_data!.codec)))];
}

/**
 * A Hadoop-framed LZ4 page (the deprecated LZ4 codec as parquet-mr writes it): 4-byte big-endian
 * decompressed and compressed sizes, then an LZ4 block. The block here is one sequence of literals
 * only, which is valid LZ4: it tests the framing, DuckDB's LZ4_RAW file the block decoder.
 */
function hadoopLz4(page: Uint8Array): Uint8Array {
  const extra: number[] = [];
  let rest = page.length - 15;
  if (rest >= 0) {
    for (; rest >= 255; rest -= 255) extra.push(255);
    extra.push(rest);
  }
  const block = new Uint8Array([(Math.min(page.length, 15) << 4) | 0, ...extra, ...page]);
  const framed = new Uint8Array(8 + block.length);
  const view = new DataView(framed.buffer);
  view.setUint32(0, page.length);
  view.setUint32(4, block.length);
  framed.set(block, 8);
  return framed;
}

test('Parquet files compressed with ZSTD, LZ4 (Hadoop), LZ4_RAW, Snappy, gzip and Brotli read to the same events as an uncompressed one', async (t) => {
  const { dir, featurizer } = t.context;
  const expected = events.map((record, index) => {
    const result = featurizer.featurizeRecord(record, coordinates.topic, coordinates.partition, index + 1, NOW);
    if (!result.ok) throw new Error(result.rejection.detail);
    return { type: 'event', event: result.event };
  });
  const plain = join(dir, 'plain.parquet');
  await writeParquet(plain, events, 100, { codec: 'UNCOMPRESSED' });
  t.deepEqual(await codecsOf(plain), ['UNCOMPRESSED']);
  t.deepEqual(await readAll(t, plain), expected, 'uncompressed');

  // DuckDB writes the codecs as other tools do (real ZSTD frames, LZ4 blocks with matches), with several row groups.
  const duck = await (await DuckDBInstance.create(':memory:')).connect();
  const codecs = { zstd: 'ZSTD', lz4_raw: 'LZ4_RAW', snappy: 'SNAPPY', gzip: 'GZIP', brotli: 'BROTLI' } as const;
  for (const [name, codec] of Object.entries(codecs)) {
    const path = join(dir, `${name}.parquet`);
    await duck.run(`COPY (SELECT * FROM read_parquet('${plain}')) TO '${path}' (FORMAT parquet, COMPRESSION ${name}, ROW_GROUP_SIZE 128)`);
    t.deepEqual(await codecsOf(path), [codec], `${name}: the file is compressed as asked`);
    t.deepEqual(await readAll(t, path), expected, codec);
  }
  duck.closeSync();

  const lz4 = join(dir, 'hadoop-lz4.parquet');
  await writeParquet(lz4, events, 100, { codec: 'LZ4', compressors: { LZ4: hadoopLz4 } });
  t.deepEqual(await codecsOf(lz4), ['LZ4']);
  t.deepEqual(await readAll(t, lz4), expected, 'LZ4 (Hadoop framing)');
});

test('a Parquet codec that cannot be read is refused when the file is opened, naming the file, the column and the codec', async (t) => {
  const path = join(t.context.dir, 'lzo.parquet');
  // LZO: a codec parquet-format names that nothing here decompresses. The "compressor" copies the page.
  await writeParquet(path, events.slice(0, 10), 100, { codec: 'LZO', compressors: { LZO: (page) => page } });
  const error = await t.throwsAsync(ParquetSource.open({ path, label: 'lzo.parquet', coordinates, featurizer: t.context.featurizer, filter: {}, nowMs: NOW }), {
    instanceOf: TasteError,
  });
  t.is(error?.code, ErrorCodes.EVENT_INVALID);
  t.regex(error!.message, /^lzo\.parquet: column "type" is compressed with LZO, which is not supported \(UNCOMPRESSED, .*ZSTD.*\)/);

  // A column the backfill does not read may be in any codec.
  const extra = join(t.context.dir, 'lzo-extra.parquet');
  const some = events.slice(0, 10);
  await writeParquet(extra, some, 100, { compressors: { LZO: (page) => page }, columns: [{ name: 'note', data: some.map(() => 'x'), type: 'STRING', codec: 'LZO' }] });
  t.true((await codecsOf(extra)).includes('LZO'));
  t.is((await readAll(t, extra)).filter((outcome) => outcome.type === 'event').length, some.length);
});
