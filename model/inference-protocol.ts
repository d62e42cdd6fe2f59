import type { ValueInfo } from './contract.js';
import type { StepBatch } from './features.js';

/** Messages between the inference pool (main thread) and its workers. */

export const ExecutionProviders = ['cpu', 'webgpu', 'cuda'] as const;
export type ExecutionProvider = (typeof ExecutionProviders)[number];
/** What a caller may ask for: a provider, or `auto` (the best one that starts here; model/execution-providers.ts). */
export const ExecutionProviderChoices = [...ExecutionProviders, 'auto'] as const;
export type ExecutionProviderChoice = (typeof ExecutionProviderChoices)[number];

export interface WorkerInit {
  modelPath: string;
  executionProvider: ExecutionProvider;
  intraOpThreads: number;
  allowSpinning: boolean;
}

/** A windowed model's run. */
export interface InferenceRequest {
  type?: 'window';
  id: number;
  batchSize: number;
  timeSteps: number;
  queryTokens: number;
  itemIds: BigInt64Array;
  eventKinds: BigInt64Array;
  queryTokenIds: BigInt64Array;
  gapBuckets: BigInt64Array;
  ageBuckets: BigInt64Array;
}

/** A stateful model's step run. */
export type StepRequest = { type: 'step'; id: number } & StepBatch;

export type WorkerRequest = InferenceRequest | StepRequest;

export type WorkerMessage =
  | { type: 'ready'; inputs: ValueInfo[]; outputs: ValueInfo[] }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; id: number; embeddings: Float32Array; dim: number; checkpoints?: Float32Array }
  | { type: 'failed'; id: number; message: string };
