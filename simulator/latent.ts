// Small vector helpers for the latent taste space. Vectors are Float32Array, unit length.
import type { Random } from './random.js';

export function randomUnitVector(rng: Random, dim: number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = rng.normal();
  return normalize(v);
}

/** In place; returns `v`. A zero vector stays zero. */
export function normalize(v: Float32Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < v.length; i++) norm += v[i]! * v[i]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
  return v;
}

/** `target += scale * v`, in place; returns `target`. */
export function addScaled(target: Float32Array, v: ArrayLike<number>, scale: number): Float32Array {
  for (let i = 0; i < target.length; i++) target[i] = target[i]! + scale * v[i]!;
  return target;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Dot product of `user` with row `row` of a flat row-major matrix (the hot path of the simulator). */
export function dotRow(user: Float32Array, matrix: Float32Array, row: number): number {
  const dim = user.length;
  const offset = row * dim;
  let sum = 0;
  for (let i = 0; i < dim; i++) sum += user[i]! * matrix[offset + i]!;
  return sum;
}
