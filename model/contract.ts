import { ErrorCodes, TasteError } from '../common/errors.js';

/** What the pipeline requires of a model (docs/model-contract.md). */
export const MODEL_CONTRACT = 'taste.model.v1';
export const FEATURES_SPEC = 'taste.features.v1';

/**
 * The two model kinds. `windowed`: the graph re-reads the newest max_seq_len events on every update.
 * `stateful`: a step graph advances a fixed-size state by the new events (docs/model-contract.md).
 */
export const ModelKinds = { WINDOWED: 'windowed', STATEFUL: 'stateful' } as const;
export type ModelKind = (typeof ModelKinds)[keyof typeof ModelKinds];

export const ModelInputs = ['item_ids', 'event_kinds', 'query_tokens', 'gap_buckets', 'age_buckets'] as const;
export type ModelInputName = (typeof ModelInputs)[number];
export const MODEL_OUTPUT = 'user_embedding';
export const StepInputs = ['state', 'item_ids', 'event_kinds', 'query_tokens', 'gap_buckets', 'checkpoint_at'] as const;
export const STEP_CHECKPOINT_OUTPUT = 'checkpoint';

interface InputSpec {
  type: string;
  rank: number;
}

const INPUT_SPECS: Record<ModelKind, Record<string, InputSpec>> = {
  windowed: {
    item_ids: { type: 'int64', rank: 2 },
    event_kinds: { type: 'int64', rank: 2 },
    query_tokens: { type: 'int64', rank: 3 },
    gap_buckets: { type: 'int64', rank: 2 },
    age_buckets: { type: 'int64', rank: 2 },
  },
  stateful: {
    state: { type: 'float32', rank: 2 },
    item_ids: { type: 'int64', rank: 2 },
    event_kinds: { type: 'int64', rank: 2 },
    query_tokens: { type: 'int64', rank: 3 },
    gap_buckets: { type: 'int64', rank: 2 },
    checkpoint_at: { type: 'int64', rank: 1 },
  },
};

/** What the stateful kind adds to the metadata. */
export interface StatefulMetadata {
  /** Floats in a user's state. */
  stateDim: number;
  /** Events kept after the checkpoint, re-applied to place late events exactly. */
  tailEvents: number;
  /** Most events one step call may carry; longer runs are split into several steps. */
  maxStepEvents: number;
}

export interface ModelMetadata {
  modelVersion: string;
  kind: ModelKind;
  /** Set for the stateful kind only. */
  stateful?: StatefulMetadata;
  embeddingDim: number;
  /** Events kept in a user's stored window: max_seq_len (windowed), or the tail (stateful). */
  maxSeqLen: number;
  queryTokens: number;
  queryBuckets: number;
  numItems: number;
  trained: boolean;
  trainingData: string;
}

/** A model input or output as onnxruntime reports it. */
export interface ValueInfo {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: readonly (number | string)[];
}

function contractError(modelPath: string, problem: string): TasteError {
  return new TasteError(
    ErrorCodes.MODEL_CONTRACT,
    `model ${modelPath} does not meet the ${MODEL_CONTRACT} contract: ${problem} (see docs/model-contract.md)`,
  );
}

const VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function parseModelMetadata(props: ReadonlyMap<string, string>, modelPath: string): ModelMetadata {
  const contract = props.get('taste.contract');
  if (contract !== MODEL_CONTRACT) {
    throw contractError(modelPath, `metadata taste.contract is ${JSON.stringify(contract ?? null)}, expected "${MODEL_CONTRACT}"`);
  }
  const features = props.get('taste.features');
  if (features !== FEATURES_SPEC) {
    throw contractError(modelPath, `metadata taste.features is ${JSON.stringify(features ?? null)}, expected "${FEATURES_SPEC}"`);
  }
  const modelVersion = props.get('taste.model_version') ?? '';
  if (!VERSION_PATTERN.test(modelVersion)) {
    throw contractError(modelPath, `metadata taste.model_version ${JSON.stringify(modelVersion)} must match ${VERSION_PATTERN}`);
  }
  const positive = (key: string, max: number): number => {
    const raw = props.get(key);
    const value = Number(raw);
    if (raw === undefined || !Number.isInteger(value) || value < 1 || value > max) {
      throw contractError(modelPath, `metadata ${key} is ${JSON.stringify(raw ?? null)}, expected an integer in 1..${max}`);
    }
    return value;
  };
  const kind = props.get('taste.model_kind') ?? ModelKinds.WINDOWED;
  if (kind !== ModelKinds.WINDOWED && kind !== ModelKinds.STATEFUL) {
    throw contractError(modelPath, `metadata taste.model_kind is ${JSON.stringify(kind)}, expected "windowed" or "stateful"`);
  }
  let stateful: StatefulMetadata | undefined;
  if (kind === ModelKinds.STATEFUL) {
    stateful = {
      stateDim: positive('taste.state_dim', 1 << 16),
      tailEvents: positive('taste.tail_events', 4096),
      maxStepEvents: positive('taste.max_step_events', 1 << 16),
    };
    if (stateful.tailEvents >= stateful.maxStepEvents) {
      throw contractError(modelPath, `taste.tail_events (${stateful.tailEvents}) must be below taste.max_step_events (${stateful.maxStepEvents})`);
    }
  }
  const metadata: ModelMetadata = {
    modelVersion,
    kind,
    ...(stateful ? { stateful } : {}),
    embeddingDim: positive('taste.embedding_dim', 4096),
    maxSeqLen: stateful ? stateful.tailEvents : positive('taste.max_seq_len', 4096),
    queryTokens: positive('taste.query_tokens', 64),
    queryBuckets: positive('taste.query_buckets', 1 << 24),
    numItems: positive('taste.num_items', 1 << 30),
    trained: props.get('taste.trained') === 'true',
    trainingData: props.get('taste.training_data') ?? '',
  };
  if (metadata.queryBuckets < 2) throw contractError(modelPath, 'taste.query_buckets must be at least 2');
  if (metadata.numItems < 2) throw contractError(modelPath, 'taste.num_items must be at least 2 (<pad> and <unk>)');
  return metadata;
}

/** Checks names, element types and ranks of the session's inputs and output against the contract. */
export function validateModelSignature(
  inputs: readonly ValueInfo[],
  outputs: readonly ValueInfo[],
  metadata: ModelMetadata,
  modelPath: string,
): void {
  const byName = new Map(inputs.map((input) => [input.name, input]));
  const specs = INPUT_SPECS[metadata.kind];
  for (const [name, spec] of Object.entries(specs)) {
    const input = byName.get(name);
    if (!input) throw contractError(modelPath, `missing input "${name}" of a ${metadata.kind} model (has: ${[...byName.keys()].join(', ') || 'none'})`);
    if (!input.isTensor || input.type !== spec.type) {
      throw contractError(modelPath, `input "${name}" must be a ${spec.type} tensor, found ${input.type ?? 'a non-tensor'}`);
    }
    if (input.shape && input.shape.length > 0 && input.shape.length !== spec.rank) {
      throw contractError(modelPath, `input "${name}" must have rank ${spec.rank}, found [${input.shape.join(', ')}]`);
    }
    const tokenAxis = input.shape?.[2];
    if (name === 'query_tokens' && typeof tokenAxis === 'number' && tokenAxis !== metadata.queryTokens) {
      throw contractError(modelPath, `input "query_tokens" has ${tokenAxis} tokens per event but metadata says ${metadata.queryTokens}`);
    }
    const stateAxis = input.shape?.[1];
    if (name === 'state' && typeof stateAxis === 'number' && stateAxis !== metadata.stateful?.stateDim) {
      throw contractError(modelPath, `input "state" has ${stateAxis} floats but metadata taste.state_dim says ${metadata.stateful?.stateDim}`);
    }
  }
  const extra = inputs.filter((input) => !(input.name in specs));
  if (extra.length > 0) throw contractError(modelPath, `unexpected inputs of a ${metadata.kind} model: ${extra.map((input) => input.name).join(', ')}`);
  if (metadata.kind === ModelKinds.STATEFUL && !outputs.some((output) => output.name === STEP_CHECKPOINT_OUTPUT && output.type === 'float32')) {
    throw contractError(modelPath, `a stateful model must have a float32 output "${STEP_CHECKPOINT_OUTPUT}"`);
  }

  const output = outputs.find((candidate) => candidate.name === MODEL_OUTPUT);
  if (!output) {
    throw contractError(modelPath, `missing output "${MODEL_OUTPUT}" (has: ${outputs.map((o) => o.name).join(', ') || 'none'})`);
  }
  if (!output.isTensor || output.type !== 'float32') {
    throw contractError(modelPath, `output "${MODEL_OUTPUT}" must be a float32 tensor, found ${output.type ?? 'a non-tensor'}`);
  }
  const shape = output.shape;
  if (shape && shape.length > 0 && shape.length !== 2) {
    throw contractError(modelPath, `output "${MODEL_OUTPUT}" must have rank 2 [batch, dim], found [${shape.join(', ')}]`);
  }
  const dim = shape?.[1];
  if (typeof dim === 'number' && dim !== metadata.embeddingDim) {
    throw contractError(modelPath, `output dimension is ${dim} but metadata taste.embedding_dim says ${metadata.embeddingDim}`);
  }
}
