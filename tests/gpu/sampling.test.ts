import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { uploadBuffer } from '../../src/runtime/buffers.js';
import { prepareSampling, type SamplingArgs, type SamplingDispatch } from '../../src/kernels/sampling.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { guardIntact, input, poisonedF32, poisonedU32, readF32, readU32, run } from '../helpers/gpu-run.js';
import { randomF32 } from '../helpers/random.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

/** CPU argmax, ties to the lowest id. */
function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** `rows` copies of one row of logits. */
function replicate(row: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(rows * row.length);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}

/** Prepares one sampler over `logits` and returns it with a runner that samples all rows at the given params. */
function sampler(logits: Float32Array, rows: number, vocab: number, extra: Partial<SamplingArgs> = {}) {
  const logitsBuf = input(ctx, logits, 'test/logits');
  const tokens = poisonedU32(ctx, rows, 'test/tokens');
  const d: SamplingDispatch = prepareSampling(ctx, { logits: logitsBuf, tokens, rows, vocab, ...extra });
  return {
    d,
    tokens,
    /** Runs the dispatch once per params entry (update between submits) and returns all tokens. */
    async draw(paramsList: Parameters<SamplingDispatch['update']>[0][]): Promise<Uint32Array[]> {
      const out: Uint32Array[] = [];
      for (const params of paramsList) {
        d.update(params);
        await ctx.checked('sampling', () => {
          const enc = ctx.device.createCommandEncoder();
          recordDispatches(enc, [d]);
          ctx.device.queue.submit([enc.finish()]);
        });
        const got = await readU32(ctx, tokens);
        expect(guardIntact(got, rows), 'wrote past tokens').toBe(true);
        out.push(got.slice(0, rows));
      }
      return out;
    },
    dispose() {
      disposeDispatch(d);
      logitsBuf.destroy();
      tokens.destroy();
    },
  };
}

/** Draws `rows × steps` tokens (steps 0..steps-1) from `rows` copies of `row`. */
async function drawMany(row: Float32Array, rows: number, steps: number, params: Parameters<SamplingDispatch['update']>[0]) {
  const s = sampler(replicate(row, rows), rows, row.length, { params });
  try {
    const runs = await s.draw(Array.from({ length: steps }, (_, step) => ({ step })));
    const counts = new Array<number>(row.length).fill(0);
    for (const r of runs) for (const t of r) counts[t] = (counts[t] ?? 0) + 1;
    return counts;
  } finally {
    s.dispose();
  }
}

/** Float64 softmax of row / T. */
function softmax(row: Float32Array, T = 1): number[] {
  const s = [...row].map((x) => x / T);
  const m = Math.max(...s);
  const e = s.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

describe('sampling: greedy argmax', () => {
  it('equals CPU argmax (ties to the lowest id) for vocab in {1, 7, 65, 1000, 4097}', async () => {
    let seed = 100;
    for (const vocab of [1, 7, 65, 1000, 4097]) {
      const rows = 3;
      const logits = randomF32(rows * vocab, seed++, 4);
      // Row 1: a tie between two maxima; row 2: all equal.
      if (vocab > 2) {
        const r1 = logits.subarray(vocab, 2 * vocab);
        const j = argmax(r1);
        r1[vocab - 1] = r1[j]!;
        if (j !== 0) r1[0] = r1[j]!;
      }
      logits.subarray(2 * vocab, 3 * vocab).fill(-1.5);
      const s = sampler(logits, rows, vocab, { params: { greedy: true } });
      try {
        const [got] = await s.draw([{}]);
        const want = [0, 1, 2].map((r) => argmax(logits.subarray(r * vocab, (r + 1) * vocab)));
        expect([...got!], `vocab=${vocab}`).toEqual(want);
        expect(got![2]).toBe(0);
      } finally {
        s.dispose();
      }
    }
  });

  it('one row of 32,000', async () => {
    const vocab = 32000;
    const logits = randomF32(vocab, 77, 10);
    logits[31999] = 11;
    logits[20000] = 11;
    const s = sampler(logits, 1, vocab, { params: { greedy: true } });
    try {
      const [got] = await s.draw([{}]);
      expect(got![0]).toBe(20000);
    } finally {
      s.dispose();
    }
  });

  it('temperature 0, or the greedy flag, equals argmax whatever the filters', async () => {
    const vocab = 1000;
    const rows = 4;
    const logits = randomF32(rows * vocab, 5, 3);
    const want = [0, 1, 2, 3].map((r) => argmax(logits.subarray(r * vocab, (r + 1) * vocab)));
    const s = sampler(logits, rows, vocab, { params: { topK: 3, topP: 0.5, minP: 0.1 } });
    try {
      const runs = await s.draw([
        { temperature: 0, seed: 1, step: 2 },
        { temperature: 0.7, greedy: true, seed: 9, step: 3 },
      ]);
      for (const r of runs) expect([...r]).toEqual(want);
    } finally {
      s.dispose();
    }
  });
});

describe('sampling: seeded draws', () => {
  it('same seed gives the same ids; another seed another sequence; update() needs no rebuild', async () => {
    const vocab = 65;
    const rows = 64;
    const row = randomF32(vocab, 11, 1);
    const s = sampler(replicate(row, rows), rows, vocab, { params: { temperature: 1 } });
    try {
      const steps = [0, 1, 2];
      const a = await s.draw(steps.map((step) => ({ seed: 42, step })));
      const b = await s.draw(steps.map((step) => ({ seed: 42, step })));
      const c = await s.draw(steps.map((step) => ({ seed: 43, step })));
      for (let i = 0; i < steps.length; i++) {
        expect([...a[i]!]).toEqual([...b[i]!]);
        expect([...a[i]!]).not.toEqual([...c[i]!]);
      }
      // Different steps and different rows give different draws.
      expect([...a[0]!]).not.toEqual([...a[1]!]);
      expect(new Set(a[0]).size).toBeGreaterThan(10);
    } finally {
      s.dispose();
    }
  });

  it('frequencies over 8 tokens at temperature 0.7 pass a chi-square test (10,000 draws)', async () => {
    const row = new Float32Array([1.0, 0.5, -0.3, 2.0, 0.0, -1.0, 1.5, 0.2]);
    const counts = await drawMany(row, 1000, 10, { temperature: 0.7, seed: 2024 });
    const probs = softmax(row, 0.7);
    const n = 10000;
    let chi2 = 0;
    for (let i = 0; i < 8; i++) chi2 += (counts[i]! - n * probs[i]!) ** 2 / (n * probs[i]!);
    // 7 degrees of freedom: P(χ² > 29.88) = 1e-4.
    expect(chi2, `counts ${counts.join(' ')}`).toBeLessThan(29.88);
  });
});

describe('sampling: distribution after filtering', () => {
  it('top-k = 4 at temperature 1.3 renormalises over the kept tokens (chi-square, 6,000 draws)', async () => {
    const row = new Float32Array([1.0, 0.5, -0.3, 2.0, 0.0, -1.0, 1.5, 0.2]);
    const counts = await drawMany(row, 600, 10, { temperature: 1.3, topK: 4, seed: 99 });
    const kept = [3, 6, 0, 1];
    const pr = softmax(row, 1.3);
    const z = kept.reduce((a, i) => a + pr[i]!, 0);
    const n = 6000;
    let chi2 = 0;
    for (const i of kept) chi2 += (counts[i]! - (n * pr[i]!) / z) ** 2 / ((n * pr[i]!) / z);
    expect(counts.reduce((a, c, i) => a + (kept.includes(i) ? 0 : c), 0)).toBe(0);
    // 3 degrees of freedom: P(χ² > 21.11) = 1e-4.
    expect(chi2, `counts ${counts.join(' ')}`).toBeLessThan(21.11);
  });
});

describe('sampling: filters never pick outside the allowed set (10,000 draws each)', () => {
  const vocab = 65;
  const row = randomF32(vocab, 3, 3);
  const probs = softmax(row);
  const order = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!);

  it('top-k = 5', async () => {
    const allowed = new Set(order.slice(0, 5));
    const counts = await drawMany(row, 1000, 10, { topK: 5, seed: 7 });
    counts.forEach((c, i) => {
      if (!allowed.has(i)) expect(c, `token ${i}`).toBe(0);
    });
    for (const i of allowed) expect(counts[i]).toBeGreaterThan(0);
  });

  it('top-p = 0.6 (the HF nucleus: smallest set reaching p)', async () => {
    const p = 0.6;
    const allowed = new Set<number>();
    let before = 0;
    for (const i of order) {
      if (before >= p) break;
      allowed.add(i);
      before += probs[i]!;
      expect(Math.abs(before - p), 'boundary too close to p for f32').toBeGreaterThan(1e-4);
    }
    expect(allowed.size).toBeGreaterThan(1);
    const counts = await drawMany(row, 1000, 10, { topP: p, seed: 8 });
    counts.forEach((c, i) => {
      if (!allowed.has(i)) expect(c, `token ${i}`).toBe(0);
    });
    for (const i of allowed) expect(counts[i]).toBeGreaterThan(0);
  });

  it('top-p keeps at least the most probable token', async () => {
    const counts = await drawMany(row, 100, 2, { topP: 1e-6, seed: 9 });
    expect(counts[order[0]!]).toBe(200);
  });

  it('min-p = 0.2', async () => {
    const minP = 0.2;
    const pmax = probs[order[0]!]!;
    const allowed = new Set(order.filter((i) => probs[i]! >= minP * pmax));
    for (const i of order) expect(Math.abs(probs[i]! / pmax - minP)).toBeGreaterThan(1e-4);
    expect(allowed.size).toBeGreaterThan(1);
    const counts = await drawMany(row, 1000, 10, { minP, seed: 10 });
    counts.forEach((c, i) => {
      if (!allowed.has(i)) expect(c, `token ${i}`).toBe(0);
    });
    for (const i of allowed) expect(counts[i]).toBeGreaterThan(0);
  });

  it('top-k keeps ties with the k-th value; top-k then top-p compose', async () => {
    const tied = new Float32Array([0, 3, 1, 3, 2, 3, -1, 0.5]);
    // top-k = 2 keeps all three tokens equal to the 2nd largest value (3).
    const c1 = await drawMany(tied, 200, 3, { topK: 2, seed: 11 });
    expect(c1.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([1, 3, 5]);
    // top-k = 4 keeps {1, 3, 5, 4}; then top-p = 0.85 over those drops token 4 (e^-1 / (3 + e^-1) ≈ 0.109).
    const c2 = await drawMany(tied, 200, 3, { topK: 4, topP: 0.85, seed: 12 });
    expect(c2.map((c, i) => (c > 0 ? i : -1)).filter((i) => i >= 0)).toEqual([1, 3, 5]);
  });

  it('a larger vocab (4097) with top-k, top-p and temperature', async () => {
    const big = randomF32(4097, 21, 6);
    const pr = softmax(big, 0.8);
    const ord = [...pr.keys()].sort((a, b) => pr[b]! - pr[a]!);
    const allowed = new Set(ord.slice(0, 40));
    const counts = await drawMany(big, 100, 3, { temperature: 0.8, topK: 40, topP: 0.999999, seed: 5 });
    counts.forEach((c, i) => {
      if (!allowed.has(i)) expect(c, `token ${i}`).toBe(0);
    });
    expect(counts.filter((c) => c > 0).length).toBeGreaterThan(5);
  });
});

describe('sampling: large rows (the 256-thread variant)', () => {
  it('vocab 20,000: top-k = 50 with min-p = 0.3 at temperature 0.9 (1,000 draws)', async () => {
    const vocab = 20000;
    const row = randomF32(vocab, 41, 8);
    const pr = softmax(row, 0.9);
    const ord = [...pr.keys()].sort((a, b) => pr[b]! - pr[a]!);
    const pmax = pr[ord[0]!]!;
    const allowed = new Set(ord.slice(0, 50).filter((i) => pr[i]! >= 0.3 * pmax));
    expect(allowed.size).toBeGreaterThan(3);
    const counts = await drawMany(row, 100, 10, { temperature: 0.9, topK: 50, minP: 0.3, seed: 77 });
    counts.forEach((c, i) => {
      if (!allowed.has(i)) expect(c, `token ${i}`).toBe(0);
    });
    expect(counts.filter((c) => c > 0).length).toBeGreaterThan(3);
  });

  it('vocab 262,144 in one row: greedy, and top-k = 3 sampling', async () => {
    const vocab = 262144;
    const row = randomF32(vocab, 43, 5);
    row[100] = 9;
    row[262000] = 9.5;
    row[7] = 8.8;
    const s = sampler(row, 1, vocab, { params: { topK: 3, seed: 3 } });
    try {
      const [greedy] = await s.draw([{ greedy: true }]);
      expect(greedy![0]).toBe(262000);
      const runs = await s.draw([0, 1, 2, 3, 4, 5].map((step) => ({ step, greedy: false })));
      for (const r of runs) expect([7, 100, 262000]).toContain(r[0]);
    } finally {
      s.dispose();
    }
  });
});

describe('sampling: repetition penalty', () => {
  it('processed scores match the CPU math; each distinct id penalised once; greedy flips', async () => {
    const vocab = 1000;
    const rows = 2;
    const stride = 6;
    const logits = randomF32(rows * vocab, 31, 2);
    const top0 = argmax(logits.subarray(0, vocab));
    logits[5] = -1.25; // a negative logit in the history
    // Row 0: the argmax is in the history (twice) with an out-of-range id; row 1: only 2 valid ids.
    const ids = new Uint32Array([top0, 5, top0, 999, 5000, 7, 3, 4, 0, 0, 0, 0]);
    const counts = new Uint32Array([5, 2]);
    const penalty = 1.7;
    const T = 0.8;
    const scores = poisonedF32(ctx, rows * vocab, 'test/scores');
    const idsBuf = input(ctx, ids, 'test/history-ids');
    const countsBuf = input(ctx, counts, 'test/history-counts');
    const s = sampler(logits, rows, vocab, {
      scores,
      history: { ids: idsBuf, counts: countsBuf, stride },
      params: { temperature: T, repetitionPenalty: penalty, greedy: false, seed: 1 },
    });
    try {
      await s.draw([{}]);
      const got = await readF32(ctx, scores);
      expect(guardIntact(got, rows * vocab), 'wrote past scores').toBe(true);
      const want = new Float32Array(rows * vocab);
      for (let r = 0; r < rows; r++) {
        const pen = new Float32Array(logits.subarray(r * vocab, (r + 1) * vocab));
        const seen = new Set([...ids.subarray(r * stride, r * stride + counts[r]!)].filter((id) => id < vocab));
        for (const id of seen) {
          const x = logits[r * vocab + id]!;
          pen[id] = x < 0 ? Math.fround(x * penalty) : Math.fround(x / Math.fround(penalty));
        }
        for (let i = 0; i < vocab; i++) want[r * vocab + i] = Math.fround(pen[i]! / Math.fround(T));
      }
      let maxErr = 0;
      for (let i = 0; i < rows * vocab; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
      expect(maxErr).toBeLessThan(1e-6);
      // Greedy over the penalised logits picks the CPU argmax of the penalised row, not the raw one.
      const [greedy] = await s.draw([{ greedy: true }]);
      const pen0 = new Float32Array(want.subarray(0, vocab));
      expect(greedy![0]).toBe(argmax(pen0));
      expect(greedy![0]).not.toBe(top0);
      // Penalty 1 leaves the raw argmax.
      const [plain] = await s.draw([{ greedy: true, repetitionPenalty: 1 }]);
      expect(plain![0]).toBe(top0);
    } finally {
      s.dispose();
      scores.destroy();
      idsBuf.destroy();
      countsBuf.destroy();
    }
  });
});

describe('sampling: suppressed ids (min_new_tokens)', () => {
  it('greedy and sampled draws avoid the suppressed ids while step < suppressSteps, and take them after', async () => {
    const vocab = 65;
    const row = randomF32(vocab, 71, 3);
    const order = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    const suppressIds = [order[0]!, order[1]!, 999]; // the two best ids, and one past the vocab (ignored)
    const s = sampler(replicate(row, 3), 3, vocab, { params: { greedy: true, suppressIds, suppressSteps: 2 } });
    try {
      const greedy = await s.draw([{ step: 0 }, { step: 1 }, { step: 2 }, { step: 7 }]);
      expect(greedy.map((r) => [...r])).toEqual([
        [order[2], order[2], order[2]],
        [order[2], order[2], order[2]],
        [order[0], order[0], order[0]],
        [order[0], order[0], order[0]],
      ]);
      const sampled = await s.draw(
        Array.from({ length: 40 }, (_, step) => ({ greedy: false, temperature: 2, seed: 9, step, suppressSteps: 40 })),
      );
      for (const r of sampled) for (const t of r) expect(suppressIds).not.toContain(t);
      // The same draws without suppression do hit them, so the test can fail.
      const free = await s.draw(Array.from({ length: 40 }, (_, step) => ({ step, suppressSteps: 0 })));
      expect(free.some((r) => [...r].some((t) => suppressIds.includes(t)))).toBe(true);
    } finally {
      s.dispose();
    }
  });

  it('rejects more than 8 ids or a bad step count', () => {
    const logits = uploadBuffer(ctx, 'logits', new Float32Array(10));
    const tokens = uploadBuffer(ctx, 'tokens', new Uint32Array(1));
    try {
      const d = prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10 });
      expect(() => d.update({ suppressIds: [1, 2, 3, 4, 5, 6, 7, 8, 9] })).toThrow(/at most 8/);
      expect(() => d.update({ suppressSteps: -1 })).toThrow(/suppressSteps/);
      disposeDispatch(d);
    } finally {
      logits.destroy();
      tokens.destroy();
    }
  });
});

describe('sampling: validation', () => {
  it('rejects bad shapes, small buffers (naming them) and bad params', () => {
    const logits = uploadBuffer(ctx, 'too-small-logits', new Float32Array(10));
    const tokens = uploadBuffer(ctx, 'tokens', new Uint32Array(4));
    try {
      expect(() => prepareSampling(ctx, { logits, tokens, rows: 2, vocab: 10 })).toThrow(GPUValidationError);
      expect(() => prepareSampling(ctx, { logits, tokens, rows: 2, vocab: 10 })).toThrow(/too-small-logits/);
      expect(() => prepareSampling(ctx, { logits, tokens, rows: 0, vocab: 10 })).toThrow(/rows must be a positive integer/);
      expect(() => prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10, params: { topP: 0 } })).toThrow(/topP/);
      expect(() => prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10, params: { topK: 1.5 } })).toThrow(/topK/);
      expect(() =>
        prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10, params: { repetitionPenalty: 0 } }),
      ).toThrow(/repetitionPenalty/);
      expect(() =>
        prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10, history: { ids: tokens, counts: tokens, stride: 8 } }),
      ).toThrow(/history.ids/);
      const d = prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 10 });
      expect(() => d.update({ seed: -1 })).toThrow(/seed/);
      expect(d.params.seed).toBe(0);
      d.update({ seed: 5, step: 3 });
      expect(d.params).toMatchObject({ seed: 5, step: 3, temperature: 1 });
      disposeDispatch(d);
    } finally {
      logits.destroy();
      tokens.destroy();
    }
  });
});

// One-shot use through the shared runner: a fresh dispatch, disposed after the submit.
describe('sampling: one-shot run helper', () => {
  it('runs through the shared test runner', async () => {
    const logits = input(ctx, new Float32Array([0, 2, 1]), 'test/logits');
    const tokens = poisonedU32(ctx, 1, 'test/tokens');
    try {
      await run(ctx, () => [prepareSampling(ctx, { logits, tokens, rows: 1, vocab: 3, params: { greedy: true } })]);
      const got = await readU32(ctx, tokens);
      expect(got[0]).toBe(1);
      expect(guardIntact(got, 1)).toBe(true);
    } finally {
      logits.destroy();
      tokens.destroy();
    }
  });
});
