import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';

/** One listener's window of `length` completed plays, a minute apart, of items 2, 3, 4, … */
export function playWindow(length: number): WindowEvent[] {
  return Array.from({ length }, (_, index) => ({
    eventTimeMs: 1_764_000_000_000 + index * 60_000,
    stream: Streams.PLAY,
    partition: 0,
    offset: index,
    itemId: 2 + index,
    kind: EventKinds.COMPLETED,
    queryTokens: [],
  }));
}
