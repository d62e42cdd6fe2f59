import test from 'ava';
import { streamRealtimeEvents } from '../../simulator/realtime.js';
import type { EventRecord } from '../../events/event-record.js';

/** A fake wall clock that only moves when the stream sleeps. */
function fakeTime(startMs: number): { clock: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let now = startMs;
  const slept: number[] = [];
  return {
    clock: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
    slept,
  };
}

test('events are paced by the wall clock and stamped with the time they are yielded', async (t) => {
  const time = fakeTime(1_800_000_000_000);
  const seen: EventRecord[] = [];
  for await (const e of streamRealtimeEvents({ users: 30, seed: 4, timeScale: 3600, clock: time.clock, sleep: time.sleep })) {
    seen.push(e);
    if (seen.length === 300) break;
  }
  t.is(seen.length, 300);
  t.true(time.slept.length > 0, 'the stream waited for events to become due');
  let previous = 1_800_000_000_000;
  for (const e of seen) {
    t.true(e.event.eventTimeMs >= previous);
    previous = e.event.eventTimeMs;
  }
  // 300 events of 30 users at 3600x: a few simulated hours, i.e. seconds of wall time.
  const wallMs = previous - 1_800_000_000_000;
  t.true(wallMs > 0 && wallMs < 10 * 60_000, `took ${wallMs} ms of wall time`);
});

test('a clicked search is still followed by its play after restamping', async (t) => {
  const time = fakeTime(1_800_000_000_000);
  const last = new Map<string, EventRecord>();
  let checked = 0;
  let n = 0;
  for await (const e of streamRealtimeEvents({ users: 50, seed: 9, timeScale: 100_000, clock: time.clock, sleep: time.sleep })) {
    const before = last.get(e.event.userId);
    if (before?.kind === 'search' && before.event.clickedItemUri !== '') {
      t.is(e.kind, 'play');
      if (e.kind === 'play') t.is(e.event.itemUri, before.event.clickedItemUri);
      checked++;
    }
    last.set(e.event.userId, e);
    if (++n === 5000) break;
  }
  t.true(checked > 10);
});

test('an aborted signal ends the stream quietly', async (t) => {
  const controller = new AbortController();
  let n = 0;
  for await (const _ of streamRealtimeEvents({ users: 10, seed: 1, timeScale: 1e6, signal: controller.signal })) {
    if (++n === 3) controller.abort();
  }
  t.is(n, 3);
});

test('timeScale is validated', async (t) => {
  await t.throwsAsync(async () => {
    for await (const _ of streamRealtimeEvents({ timeScale: 0 })) break;
  }, { message: /option timeScale/ });
});
