import type { SourcedEvent } from '../events/window-event.js';

/**
 * Splits one step's events into updater batches of at most `batchSize` users, every user's events
 * in exactly one batch: the batches of a step share no user, so they may be applied concurrently
 * and in any order. (Two in-flight batches holding the same user could land out of order: the
 * later offsets written first would make the earlier ones look applied, and they would be lost.)
 * Users keep the order in which they first appear; each user's events keep their read order.
 * The split depends only on the events, so a resumed run forms the same batches.
 */
export function planBatches(events: readonly SourcedEvent[], batchSize: number): SourcedEvent[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const byUser = new Map<string, SourcedEvent[]>();
  for (const event of events) {
    const list = byUser.get(event.userId);
    if (list) list.push(event);
    else byUser.set(event.userId, [event]);
  }
  const batches: SourcedEvent[][] = [];
  let batch: SourcedEvent[] = [];
  let users = 0;
  for (const list of byUser.values()) {
    if (users === batchSize) {
      batches.push(batch);
      batch = [];
      users = 0;
    }
    for (const event of list) batch.push(event);
    users++;
  }
  if (users > 0) batches.push(batch);
  return batches;
}

/**
 * Runs `work` on every item with at most `concurrency` at once; resolves when all are done.
 * On the first failure no new item starts, the ones running finish, and the failure is thrown.
 */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  if (failure) throw failure.error;
}
