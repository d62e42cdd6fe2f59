import test from 'ava';
import { OffsetOrder } from '../../backfill/kafka-coordinates.js';

const at = (topic: string, partition: number, offset: number) => ({ topic, partition, offset });

test('offsets that strictly increase per partition pass; the offsets skipped between them are summed, and the largest gap named with its place', (t) => {
  const order = new OffsetOrder();
  // partition 0: 0..4, then a file of 100 records (5..104) missing, then 105..106; a transaction marker at 108
  for (const offset of [0, 1, 2, 3, 4, 105, 106, 108]) order.see(at('plays', 0, offset), `p0.json:${offset}`);
  // partition 1, interleaved with partition 0 in reading order elsewhere: a compaction gap of 3
  for (const offset of [10, 14, 15]) order.see(at('plays', 1, offset), `p1.json:${offset}`);
  t.is(order.partitions, 2);
  t.deepEqual(order.gaps, {
    skippedOffsets: 100 + 1 + 3,
    largest: { partition: 'plays[0]', after: 4, before: 105, skipped: 100, where: 'p0.json:105' },
  });
});

test('no gap: nothing skipped and no largest gap', (t) => {
  const order = new OffsetOrder();
  for (const offset of [7, 8, 9]) order.see(at('searches', 2, offset), `s.json:${offset}`);
  t.deepEqual(order.gaps, { skippedOffsets: 0 });
});

test('an offset at or below one already seen of its partition is refused, naming both places', (t) => {
  const order = new OffsetOrder();
  order.see(at('plays', 0, 140), 'a.json:141');
  order.see(at('plays', 1, 100), 'b.json:1');
  const error = t.throws(() => order.see(at('plays', 0, 100), 'c.json:1'));
  t.regex(error.message, /^c\.json:1: plays\[0\] offset 100 comes after offset 140 \(a\.json:141\)/);
});
