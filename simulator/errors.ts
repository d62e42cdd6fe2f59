// The simulator's errors are the project's TasteError, with the simulator's own code.
import { ErrorCodes, TasteError } from '../common/errors.js';

export const SimulatorErrorCodes = {
  /** An option is out of range or of the wrong type; the message names the option. */
  invalidOption: ErrorCodes.SIMULATOR_INVALID_OPTION,
} as const;
export type SimulatorErrorCode = (typeof SimulatorErrorCodes)[keyof typeof SimulatorErrorCodes];

export class SimulatorError extends TasteError {
  constructor(code: SimulatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SimulatorError';
  }
}

function invalid(name: string, expected: string, value: unknown): SimulatorError {
  return new SimulatorError(
    SimulatorErrorCodes.invalidOption,
    `option ${name} must be ${expected} (got ${typeof value === 'string' ? JSON.stringify(value) : String(value)})`,
  );
}

/** Checks an integer option in [min, max]; returns it. */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer between ${min} and ${max}`, value);
  }
  return value;
}

/** Checks a finite number option in [min, max] (Infinity allowed only when max is Infinity). */
export function checkNumber(name: string, value: unknown, min: number, max = Number.POSITIVE_INFINITY): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw invalid(name, `a number between ${min} and ${max}`, value);
  }
  if (!Number.isFinite(value) && Number.isFinite(max)) throw invalid(name, 'a finite number', value);
  return value;
}

/** Checks a seed option: an integer or a non-empty string. */
export function checkSeed(name: string, value: unknown): number | string {
  if ((typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && value.length > 0)) {
    return value;
  }
  throw invalid(name, 'an integer or a non-empty string', value);
}
