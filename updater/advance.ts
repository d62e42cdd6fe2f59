import { ErrorCodes, TasteError } from '../common/errors.js';
import type { Checkpoint, UserState } from '../featurestore/feature-store.js';
import { mergeWindow, type StepInput } from '../model/features.js';
import type { WindowEvent } from '../events/window-event.js';

/**
 * How a user's stored sequence state advances by new events, per model kind. The updater does
 * everything around it (dedup, compare-and-set, retries); an advancer only computes.
 */
export interface AdvanceInput {
  state: UserState;
  /** Events not applied yet (already deduplicated by offset), in any order. */
  fresh: readonly WindowEvent[];
}

export interface Advanced {
  window: WindowEvent[];
  checkpoint?: Checkpoint;
  /** Undefined when the model gave nothing for this user. */
  embedding: Float32Array | undefined;
}

export interface SequenceAdvancer {
  advance(inputs: readonly AdvanceInput[]): Promise<Advanced[]>;
}

export interface Embedder {
  embed(windows: readonly (readonly WindowEvent[])[]): Promise<Float32Array[]>;
}

/** Windowed models: merge into the newest maxSeqLen events and re-encode the whole window. */
export class WindowedAdvancer implements SequenceAdvancer {
  constructor(
    readonly embedder: Embedder,
    readonly maxSeqLen: number,
  ) {}

  async advance(inputs: readonly AdvanceInput[]): Promise<Advanced[]> {
    const windows = inputs.map(({ state, fresh }) => mergeWindow(state.window, fresh, this.maxSeqLen));
    const embeddings = await this.embedder.embed(windows);
    return windows.map((window, index) => ({ window, embedding: embeddings[index] }));
  }
}

export interface Stepper {
  step(steps: readonly StepInput[]): Promise<{ checkpoint: Float32Array; embedding: Float32Array }[]>;
}

export interface StatefulShape {
  stateDim: number;
  tailEvents: number;
  maxStepEvents: number;
}

/**
 * One user's stateful update, planned (pure). The rule (docs/model-contract.md, "Late events"):
 * the stored tail and the fresh events are merged in event order; the checkpoint precedes them all.
 * A late event that orders after the checkpoint's newest event is therefore applied exactly where it
 * belongs; one older than that lands at the front of the tail, in event order among the fresh ones,
 * because the events the checkpoint has applied cannot be re-applied. The newest `tailEvents` events
 * stay in the tail; the rest are settled into the new checkpoint.
 */
export interface StatefulPlan {
  /** Every event to apply to the old checkpoint, in applied order. */
  events: WindowEvent[];
  /** How many of `events` settle into the new checkpoint (the rest are the new tail). */
  settle: number;
  window: WindowEvent[];
}

export function planStatefulUpdate(tail: readonly WindowEvent[], fresh: readonly WindowEvent[], tailEvents: number): StatefulPlan {
  const events = mergeWindow(tail, fresh, Number.POSITIVE_INFINITY);
  const settle = Math.max(0, events.length - tailEvents);
  return { events, settle, window: events.slice(settle) };
}

/**
 * Stateful models: re-apply the tail plus the fresh events to the checkpoint in one step (cost set by
 * the tail and the new events, never by the history). Runs longer than one step allows are cut into
 * steps that each settle their events, the last one carrying the tail; users advance together.
 */
export class StatefulAdvancer implements SequenceAdvancer {
  constructor(
    readonly stepper: Stepper,
    readonly shape: StatefulShape,
  ) {
    if (shape.tailEvents >= shape.maxStepEvents) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `tailEvents (${shape.tailEvents}) must be below maxStepEvents (${shape.maxStepEvents})`);
    }
  }

  async advance(inputs: readonly AdvanceInput[]): Promise<Advanced[]> {
    const { stateDim, tailEvents, maxStepEvents } = this.shape;
    const plans = inputs.map(({ state, fresh }) => planStatefulUpdate(state.window, fresh, tailEvents));
    const cursors = inputs.map(({ state }, index) => ({
      plan: plans[index]!,
      at: 0,
      state: state.checkpoint?.state ?? new Float32Array(stateDim),
      lastEventMs: state.checkpoint?.lastEventMs,
      embedding: undefined as Float32Array | undefined,
      done: false,
    }));
    for (;;) {
      const live = cursors.filter((cursor) => !cursor.done);
      if (live.length === 0) break;
      const steps: StepInput[] = live.map((cursor) => {
        const remaining = cursor.plan.events.length - cursor.at;
        const toSettle = cursor.plan.settle - cursor.at;
        // the last step carries the tail; earlier ones settle at most maxStepEvents events each
        const length = remaining <= maxStepEvents ? remaining : Math.min(maxStepEvents, toSettle);
        return {
          state: cursor.state,
          previousEventMs: cursor.lastEventMs,
          events: cursor.plan.events.slice(cursor.at, cursor.at + length),
          checkpointAt: Math.min(length, Math.max(0, toSettle)),
        };
      });
      const results = await this.stepper.step(steps);
      live.forEach((cursor, index) => {
        const step = steps[index]!;
        const result = results[index];
        cursor.state = result ? Float32Array.from(result.checkpoint) : cursor.state;
        if (step.checkpointAt > 0) cursor.lastEventMs = step.events[step.checkpointAt - 1]!.eventTimeMs;
        cursor.at += step.events.length;
        if (cursor.at >= cursor.plan.events.length) {
          cursor.done = true;
          cursor.embedding = result?.embedding;
        }
      });
    }
    return cursors.map((cursor) => ({
      window: cursor.plan.window,
      checkpoint: { state: cursor.state, lastEventMs: cursor.lastEventMs },
      embedding: cursor.embedding,
    }));
  }
}

/** The advancer a model's metadata calls for: inference is the pool (or a decorated one). */
export function advancerFor(
  metadata: { kind: string; maxSeqLen: number; stateful?: StatefulShape | undefined },
  inference: { embedder: Embedder; stepper: Stepper },
): SequenceAdvancer {
  if (metadata.stateful) return new StatefulAdvancer(inference.stepper, metadata.stateful);
  return new WindowedAdvancer(inference.embedder, metadata.maxSeqLen);
}
