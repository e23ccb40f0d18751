/** float64 CPU references the GPU kernels are checked against. */

/**
 * y = x · Wᵀ in float64, with Σ|x·w| per output (the scale of f32 rounding error).
 * x: (M, K), W: (N, K), both row-major.
 */
export function matmulRef(x: Float32Array, w: Float32Array, M: number, N: number, K: number) {
  const y = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k] * w[n * K + k];
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { y, absSum };
}

/**
 * Checks `got` against a float64 reference: |got − ref| ≤ rel · scale + abs for every element, where `scale` is
 * Σ|terms| (f32 accumulation error grows with it, not with |ref|). Returns a description of the worst element,
 * or null when all pass; NaN (e.g. a poisoned, unwritten element) always fails.
 */
export function compareToRef(
  got: ArrayLike<number>,
  ref: ArrayLike<number>,
  scale: ArrayLike<number>,
  rel = 1e-5,
  abs = 1e-6,
): string | null {
  if (got.length < ref.length) return `output has ${got.length} elements, expected ${ref.length}`;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    const bound = rel * scale[i] + abs;
    if (!(err <= bound)) {
      const excess = Number.isNaN(err) ? Infinity : err / bound;
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst < 0) return null;
  return `element ${worst}: got ${got[worst]}, expected ${ref[worst]} (scale ${scale[worst]})`;
}
