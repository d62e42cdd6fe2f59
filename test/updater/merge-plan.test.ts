import test from 'ava';
import type { HighWaterMarks } from '../../featurestore/codec.js';
import type { UserState } from '../../featurestore/feature-store.js';
import { EventKinds, Streams, type SourcedEvent, type WindowEvent } from '../../events/window-event.js';
import { WindowedAdvancer } from '../../updater/advance.js';
import { planMerge } from '../../updater/merge-plan.js';

// One user's merge and dedup, planned without Redis or a model. Every expectation below is written
// by hand from the rule: an offset at or below its topic-partition's high-water mark was applied.

const T0 = 1_764_000_000_000;

function play(partition: number, offset: number, minute: number): SourcedEvent {
  return {
    userId: 'u',
    topic: 'plays',
    event: { eventTimeMs: T0 + minute * 60_000, stream: Streams.PLAY, partition, offset, itemId: 100 + offset, kind: EventKinds.PLAY, queryTokens: [] },
  };
}

function search(partition: number, offset: number, minute: number): SourcedEvent {
  return {
    userId: 'u',
    topic: 'searches',
    event: { eventTimeMs: T0 + minute * 60_000, stream: Streams.SEARCH, partition, offset, itemId: 0, kind: EventKinds.SEARCH, queryTokens: [7, 8] },
  };
}

const marks = (entries: Record<string, number>): HighWaterMarks => new Map(Object.entries(entries));
const where = (events: readonly SourcedEvent[]) => events.map(({ topic, event }) => `${topic}:${event.partition}@${event.offset}`);

test('offsets at or below the stored high-water mark are duplicates; the mark moves to the newest fresh offset', (t) => {
  const plan = planMerge(marks({ 'plays:0': 5 }), [play(0, 4, 1), play(0, 5, 2), play(0, 6, 3), play(0, 7, 4)]);
  t.deepEqual(where(plan.fresh), ['plays:0@6', 'plays:0@7']);
  t.is(plan.duplicates, 2);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 7 }));
});

test('out-of-order offsets are walked in offset order, so none is taken for a duplicate', (t) => {
  const plan = planMerge(new Map(), [play(0, 9, 3), play(0, 7, 1), play(0, 8, 2)]);
  t.deepEqual(where(plan.fresh), ['plays:0@7', 'plays:0@8', 'plays:0@9']);
  t.is(plan.duplicates, 0);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 9 }));
});

test('the same offset twice in one batch (a redelivery) is applied once', (t) => {
  const plan = planMerge(new Map(), [play(0, 3, 1), play(0, 3, 1)]);
  t.deepEqual(where(plan.fresh), ['plays:0@3']);
  t.is(plan.duplicates, 1);
});

test('both streams and every partition have marks of their own; marks of sources not in the batch are kept', (t) => {
  const stored = marks({ 'plays:0': 10, 'searches:0': 2, 'plays:3': 40 });
  const plan = planMerge(stored, [search(0, 3, 5), play(0, 10, 4), play(1, 0, 6), search(0, 2, 1), play(0, 11, 7)]);
  t.deepEqual(where(plan.fresh), ['plays:0@11', 'plays:1@0', 'searches:0@3']);
  t.is(plan.duplicates, 2);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 11, 'searches:0': 3, 'plays:3': 40, 'plays:1': 0 }));
  t.deepEqual(stored, marks({ 'plays:0': 10, 'searches:0': 2, 'plays:3': 40 }), 'the stored marks are not changed');
});

test('a search and a play with the same partition and offset are different events', (t) => {
  const plan = planMerge(marks({ 'plays:0': 4 }), [play(0, 4, 1), search(0, 4, 1)]);
  t.deepEqual(where(plan.fresh), ['searches:0@4']);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 4, 'searches:0': 4 }));
});

test('the newest fresh time ignores duplicates, however new their event time', (t) => {
  const plan = planMerge(marks({ 'plays:0': 5 }), [play(0, 5, 90), play(0, 6, 10), play(0, 7, 20)]);
  t.is(plan.newestFreshMs, T0 + 20 * 60_000);
});

test('a batch of duplicates only: nothing fresh, every event counted, the marks as stored', (t) => {
  const plan = planMerge(marks({ 'plays:0': 9, 'searches:1': 9 }), [play(0, 1, 1), search(1, 9, 2)]);
  t.deepEqual(plan.fresh, []);
  t.is(plan.duplicates, 2);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 9, 'searches:1': 9 }));
});

test('the incoming list is left in the order given', (t) => {
  const incoming = [play(0, 2, 2), play(0, 1, 1)];
  planMerge(new Map(), incoming);
  t.deepEqual(where(incoming), ['plays:0@2', 'plays:0@1']);
});

test('a windowed model merges the fresh events into the newest L, a late one included where it belongs', async (t) => {
  const L = 4;
  const stored = [play(0, 1, 10), play(0, 2, 20), search(0, 1, 30)];
  const state: UserState = { version: 3, window: stored.map(({ event }) => event), highWater: marks({ 'plays:0': 2, 'searches:0': 1 }), appliedTotal: 3 };
  // Duplicates of what the window holds, then: a late play (minute 15), two new events (40, 50).
  const incoming = [play(0, 2, 20), search(0, 1, 30), play(0, 3, 15), search(0, 2, 40), play(0, 4, 50)];
  const plan = planMerge(state.highWater, incoming);
  t.deepEqual(where(plan.fresh), ['plays:0@3', 'plays:0@4', 'searches:0@2']);
  t.is(plan.duplicates, 2);

  const embedded: WindowEvent[][] = [];
  const advancer = new WindowedAdvancer({ embed: async (windows) => windows.map((window) => (embedded.push([...window]), new Float32Array(2))) }, L);
  const [advanced] = await advancer.advance([{ state, fresh: plan.fresh.map(({ event }) => event) }]);
  // Stored + fresh in event time: 10, 15 (late), 20, 30, 40, 50; the newest 4 are kept.
  const kept = ['plays:0@2 20', 'searches:0@1 30', 'searches:0@2 40', 'plays:0@4 50'];
  const label = (event: WindowEvent) => `${event.stream === Streams.PLAY ? 'plays' : 'searches'}:${event.partition}@${event.offset} ${(event.eventTimeMs - T0) / 60_000}`;
  t.deepEqual(advanced!.window.map(label), kept);
  t.deepEqual(embedded.map((window) => window.map(label)), [kept], 'the model sees exactly the new window');
});

test('a user with more events in one batch than a call takes arguments (200 000) is planned, newest time and all', (t) => {
  const events = Array.from({ length: 200_000 }, (_, offset) => play(0, offset, offset % 1000));
  const plan = planMerge(new Map(), events);
  t.is(plan.fresh.length, 200_000);
  t.is(plan.duplicates, 0);
  t.is(plan.newestFreshMs, T0 + 999 * 60_000);
  t.deepEqual(plan.highWater, marks({ 'plays:0': 199_999 }));
});

test('a batch of duplicates only has no newest fresh time', (t) => {
  t.is(planMerge(marks({ 'plays:0': 9 }), [play(0, 3, 1)]).newestFreshMs, -Infinity);
});
