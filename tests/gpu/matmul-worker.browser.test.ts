import { afterAll, describe, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import type { MatmulWorkerApi } from './matmul-worker.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef, matmulRef } from '../helpers/reference.js';
import { GUARD } from '../helpers/run-matmul.js';

const worker = new Worker(new URL('./matmul-worker.ts', import.meta.url), { type: 'module' });
const remote = Comlink.wrap<MatmulWorkerApi>(worker);
afterAll(() => worker.terminate());

describe('matmul f32 inside a module Worker', () => {
  it('gets a WebGPU adapter in the worker', async () => {
    expect((await remote.adapterName()).length).toBeGreaterThan(0);
  });

  for (const [M, N, K] of [
    [1, 1000, 65],
    [3, 7, 1000],
    [64, 65, 64],
  ]) {
    it(`M=${M} N=${N} K=${K} matches float64`, async () => {
      const x = randomF32(M * K, M + N + K);
      const w = randomF32(N * K, M * N * K);
      const got = await remote.matmul(x, w, M, N, K);
      const { y, absSum } = matmulRef(x, w, M, N, K);
      expect(compareToRef(got.subarray(0, M * N), y, absSum)).toBeNull();
      expect([...got.subarray(M * N)].every(Number.isNaN)).toBe(true);
      expect(got.length).toBe(M * N + GUARD);
    });
  }
});
