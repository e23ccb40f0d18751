import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareAttention, prepareKvWrite, prepareSplitDecodeAttention } from '../../src/kernels/attention.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef } from '../helpers/reference.js';
import { guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

interface Shape {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  base: number;
  maskStart?: number;
  window?: number;
  softCap?: number;
}

/**
 * float64 eager attention: attn_weights = softmax(q @ kᵀ * scaling + mask), attn_output = attn_weights @ v, with
 * soft-capping tanh(s / cap) * cap before the mask. Rows with no visible key are zeros. The error scale of each
 * output is the largest |v| among the keys its query sees (the size of the output).
 */
function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, s: Shape, scaling: number) {
  const { T, Hq, Hkv, D, base, maskStart = 0, window = 0, softCap = 0 } = s;
  const y = new Float64Array(T * Hq * D);
  const scale = new Float64Array(T * Hq * D);
  const rep = Hq / Hkv;
  for (let t = 0; t < T; t++) {
    const p = base + t;
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / rep);
      const qo = (t * Hq + h) * D;
      const visible: number[] = [];
      const scores: number[] = [];
      for (let j = 0; j <= p; j++) {
        if (j < maskStart || (window > 0 && j <= p - window)) continue;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * k[(j * Hkv + kvh) * D + d];
        let sc = dot * scaling;
        if (softCap > 0) sc = Math.tanh(sc / softCap) * softCap;
        visible.push(j);
        scores.push(sc);
      }
      const m = Math.max(...scores);
      const w = scores.map((x) => Math.exp(x - m));
      const sum = w.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        let big = 0;
        visible.forEach((j, i) => {
          const vv = v[(j * Hkv + kvh) * D + d];
          acc += (w[i] / sum) * vv;
          big = Math.max(big, Math.abs(vv));
        });
        y[qo + d] = acc;
        scale[qo + d] = big;
      }
    }
  }
  return { y, scale };
}

/**
 * Writes base + T keys into the caches in two kv-write steps (positions 0..base−1, then base..base+T−1, the new
 * ones), runs attention of the T queries and compares with float64.
 */
async function check(s: Shape, seed: number, maxSeq = s.base + s.T + 3, amplitude = 1): Promise<void> {
  const { T, Hq, Hkv, D, base } = s;
  const S = base + T;
  const row = Hkv * D;
  const what = JSON.stringify(s);
  const qs = randomF32(T * Hq * D, seed, amplitude);
  const ks = randomF32(S * row, seed + 1, amplitude);
  const vs = randomF32(S * row, seed + 2);
  const scaling = 1 / Math.sqrt(D);
  const q = input(ctx, qs, 'test/q');
  const kAll = input(ctx, ks, 'test/k');
  const vAll = input(ctx, vs, 'test/v');
  const kNew = input(ctx, ks.slice(base * row), 'test/k-new');
  const vNew = input(ctx, vs.slice(base * row), 'test/v-new');
  // Cache rows past the written positions stay NaN: attention must never read them.
  const kCache = poisonedF32(ctx, maxSeq * row, 'test/k-cache');
  const vCache = poisonedF32(ctx, maxSeq * row, 'test/v-cache');
  const out = poisonedF32(ctx, T * Hq * D, 'test/out');
  try {
    await run(ctx, () => {
      const list = [];
      if (base > 0) {
        list.push(prepareKvWrite(ctx, { k: kAll, v: vAll, kCache, vCache, tokens: base, kvHeads: Hkv, headDim: D, maxSeq }));
      }
      list.push(
        prepareKvWrite(ctx, { k: kNew, v: vNew, kCache, vCache, tokens: T, kvHeads: Hkv, headDim: D, maxSeq, start: base }),
        prepareAttention(ctx, {
          q, kCache, vCache, out, tokens: T, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling, base,
          maskStart: s.maskStart, window: s.window, softCap: s.softCap,
        }),
      );
      return list;
    });
    const kBack = await readF32(ctx, kCache);
    const vBack = await readF32(ctx, vCache);
    expect([...kBack.subarray(0, S * row)], `k cache (${what})`).toEqual([...ks]);
    expect([...vBack.subarray(0, S * row)], `v cache (${what})`).toEqual([...vs]);
    expect([...kBack.subarray(S * row)].every(Number.isNaN), `k cache past ${S} (${what})`).toBe(true);
    expect([...vBack.subarray(S * row)].every(Number.isNaN), `v cache past ${S} (${what})`).toBe(true);
    const got = await readF32(ctx, out);
    const n = T * Hq * D;
    const ref = attentionRef(qs, ks, vs, s, scaling);
    expect(compareToRef(got.subarray(0, n), ref.y, ref.scale), what).toBeNull();
    expect(guardIntact(got, n), `wrote past out (${what})`).toBe(true);
  } finally {
    for (const b of [q, kAll, vAll, kNew, vNew, kCache, vCache, out]) b.destroy();
  }
}

const HEADS: [number, number][] = [
  [1, 1],
  [4, 2],
  [4, 1],
];

describe('attention against float64', () => {
  it('decode: T = 1 at base 0, 1, 65; heads 1/1, 4/2, 4/1; D 16, 64, 80', async () => {
    let seed = 1000;
    for (const [Hq, Hkv] of HEADS) {
      for (const D of [16, 64, 80]) {
        for (const base of [0, 1, 65]) await check({ T: 1, Hq, Hkv, D, base }, (seed += 10));
      }
    }
  });

  it('prefill from base 0: T 7 and 33', async () => {
    let seed = 2000;
    for (const [Hq, Hkv] of HEADS) {
      for (const D of [16, 80]) {
        for (const T of [7, 33]) await check({ T, Hq, Hkv, D, base: 0 }, (seed += 10));
      }
    }
    await check({ T: 33, Hq: 4, Hkv: 2, D: 64, base: 0 }, 2999);
  });

  it('prefill after earlier keys: base 5 and 64 (blocks straddling 64 keys)', async () => {
    let seed = 3000;
    for (const [Hq, Hkv] of HEADS) {
      await check({ T: 7, Hq, Hkv, D: 16, base: 5 }, (seed += 10));
      await check({ T: 33, Hq, Hkv, D: 80, base: 64 }, (seed += 10));
    }
  });

  it('mask start (left padding), including queries that see no key', async () => {
    let seed = 4000;
    await check({ T: 7, Hq: 4, Hkv: 2, D: 16, base: 0, maskStart: 3 }, (seed += 10));
    await check({ T: 33, Hq: 4, Hkv: 1, D: 64, base: 0, maskStart: 10 }, (seed += 10));
    await check({ T: 1, Hq: 4, Hkv: 2, D: 80, base: 65, maskStart: 40 }, (seed += 10));
    await check({ T: 7, Hq: 1, Hkv: 1, D: 16, base: 60, maskStart: 63 }, (seed += 10));
  });

  it('sliding window', async () => {
    let seed = 5000;
    await check({ T: 33, Hq: 4, Hkv: 2, D: 16, base: 0, window: 8 }, (seed += 10));
    await check({ T: 1, Hq: 4, Hkv: 1, D: 64, base: 90, window: 70 }, (seed += 10));
    await check({ T: 7, Hq: 1, Hkv: 1, D: 80, base: 64, window: 1 }, (seed += 10));
    await check({ T: 7, Hq: 4, Hkv: 2, D: 16, base: 30, window: 20, maskStart: 15 }, (seed += 10));
  });

  it('soft-capping (scores pushed into tanh saturation)', async () => {
    let seed = 6000;
    await check({ T: 7, Hq: 4, Hkv: 2, D: 16, base: 0, softCap: 50 }, (seed += 10));
    await check({ T: 1, Hq: 4, Hkv: 1, D: 64, base: 65, softCap: 2 }, (seed += 10), undefined, 3);
    await check({ T: 33, Hq: 4, Hkv: 2, D: 80, base: 10, softCap: 1, window: 16 }, (seed += 10), undefined, 3);
  });
});

describe('step from a uniform', () => {
  it('one prepared kv-write + attention pair decodes token after token', async () => {
    const Hq = 4;
    const Hkv = 2;
    const D = 16;
    const steps = 5;
    const maxSeq = 8;
    const row = Hkv * D;
    const ks = randomF32(steps * row, 71);
    const vs = randomF32(steps * row, 72);
    const qs = randomF32(steps * Hq * D, 73);
    const scaling = 1 / Math.sqrt(D);
    const q = input(ctx, new Float32Array(Hq * D), 'test/q');
    const kNew = input(ctx, new Float32Array(row), 'test/k-new');
    const vNew = input(ctx, new Float32Array(row), 'test/v-new');
    const kCache = poisonedF32(ctx, maxSeq * row, 'test/k-cache');
    const vCache = poisonedF32(ctx, maxSeq * row, 'test/v-cache');
    const out = poisonedF32(ctx, Hq * D, 'test/out');
    const write = prepareKvWrite(ctx, { k: kNew, v: vNew, kCache, vCache, tokens: 1, kvHeads: Hkv, headDim: D, maxSeq });
    const attn = prepareAttention(ctx, {
      q, kCache, vCache, out, tokens: 1, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling,
    });
    try {
      for (let p = 0; p < steps; p++) {
        ctx.device.queue.writeBuffer(q, 0, new Float32Array(qs.subarray(p * Hq * D, (p + 1) * Hq * D)));
        ctx.device.queue.writeBuffer(kNew, 0, new Float32Array(ks.subarray(p * row, (p + 1) * row)));
        ctx.device.queue.writeBuffer(vNew, 0, new Float32Array(vs.subarray(p * row, (p + 1) * row)));
        write.setStep(p);
        attn.setStep(p);
        const encoder = ctx.device.createCommandEncoder();
        recordDispatches(encoder, [write, attn]);
        ctx.device.queue.submit([encoder.finish()]);
        const got = await readF32(ctx, out);
        const ref = attentionRef(qs.slice(p * Hq * D), ks, vs, { T: 1, Hq, Hkv, D, base: p }, scaling);
        expect(compareToRef(got.subarray(0, Hq * D), ref.y, ref.scale), `step ${p}`).toBeNull();
        expect(guardIntact(got, Hq * D)).toBe(true);
      }
      expect(() => write.setStep(maxSeq)).toThrow(GPUValidationError);
      expect(() => attn.setStep(0, 2)).toThrow(/setStep: tokens must be an integer in 1\.\.1/);
    } finally {
      disposeDispatch(write);
      disposeDispatch(attn);
      for (const b of [q, kNew, vNew, kCache, vCache, out]) b.destroy();
    }
  });
});

describe('validation', () => {
  it('rejects bad shapes, sizes and aliasing, naming the argument', () => {
    const D = 16;
    const q = input(ctx, new Float32Array(4 * 4 * D), 'q');
    const cache = input(ctx, new Float32Array(10 * 2 * D), 'cache');
    const cache2 = input(ctx, new Float32Array(10 * 2 * D), 'cache2');
    const short = input(ctx, new Float32Array(8), 'short');
    const out = input(ctx, new Float32Array(4 * 4 * D), 'out');
    const base = {
      q, kCache: cache, vCache: cache2, out, tokens: 4, heads: 4, kvHeads: 2, headDim: D, maxSeq: 10, scaling: 0.25,
    };
    const kv = { k: q, v: out, kCache: cache, vCache: cache2, tokens: 4, kvHeads: 2, headDim: D, maxSeq: 10 };
    try {
      const err = (f: () => unknown, re: RegExp) => {
        expect(f).toThrow(GPUValidationError);
        expect(f).toThrow(re);
      };
      err(() => prepareAttention(ctx, { ...base, heads: 3 }), /heads \(3\) must be a multiple of kvHeads \(2\)/);
      err(() => prepareAttention(ctx, { ...base, headDim: 257 }), /headDim must be an integer in 1\.\.256/);
      err(() => prepareAttention(ctx, { ...base, tokens: 0 }), /tokens must be a positive integer/);
      err(() => prepareAttention(ctx, { ...base, scaling: NaN }), /scaling must be/);
      err(() => prepareAttention(ctx, { ...base, base: 7 }), /base must be an integer with base \+ tokens ≤ maxSeq/);
      err(() => prepareAttention(ctx, { ...base, window: -1 }), /window must be/);
      err(() => prepareAttention(ctx, { ...base, softCap: -2 }), /softCap must be/);
      err(() => prepareAttention(ctx, { ...base, q: short }), /buffer q \("short"\)/);
      err(() => prepareAttention(ctx, { ...base, maxSeq: 11 }), /buffer kCache \("cache"\)/);
      err(() => prepareAttention(ctx, { ...base, out: q }), /out must be a buffer of its own/);
      err(() => prepareKvWrite(ctx, { ...kv, start: 7 }), /kv-write .*start must be an integer/);
      err(() => prepareKvWrite(ctx, { ...kv, vCache: short }), /buffer vCache \("short"\)/);
      err(() => prepareKvWrite(ctx, { ...kv, vCache: cache }), /kCache and vCache must be different/);
    } finally {
      for (const b of [q, cache, cache2, short, out]) b.destroy();
    }
  });
});

/**
 * Decode (T = 1) at position `base` with split attention, against float64 and against the single-pass kernel
 * (the same data, to within 1e-6).
 */
async function checkSplit(s: Shape, splits: number, seed: number, amplitude = 1): Promise<void> {
  const { T, Hq, Hkv, D, base } = s;
  const S = base + T;
  const maxSeq = S + 3;
  const row = Hkv * D;
  const what = `${JSON.stringify(s)} splits ${splits}`;
  const qs = randomF32(T * Hq * D, seed, amplitude);
  const ks = randomF32(S * row, seed + 1, amplitude);
  const vs = randomF32(S * row, seed + 2);
  const scaling = 1 / Math.sqrt(D);
  const q = input(ctx, qs, 'test/q');
  const kAll = input(ctx, ks, 'test/k');
  const vAll = input(ctx, vs, 'test/v');
  const kCache = poisonedF32(ctx, maxSeq * row, 'test/k-cache');
  const vCache = poisonedF32(ctx, maxSeq * row, 'test/v-cache');
  const out = poisonedF32(ctx, T * Hq * D, 'test/out');
  const single = poisonedF32(ctx, T * Hq * D, 'test/single');
  try {
    await run(ctx, () => {
      const common = {
        q, kCache, vCache, tokens: T, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling, base,
        maskStart: s.maskStart, window: s.window, softCap: s.softCap,
      };
      const split = prepareSplitDecodeAttention(ctx, { ...common, out, splits });
      return [
        prepareKvWrite(ctx, { k: kAll, v: vAll, kCache, vCache, tokens: S, kvHeads: Hkv, headDim: D, maxSeq }),
        ...split.dispatches,
        prepareAttention(ctx, { ...common, out: single }),
      ];
    });
    const n = T * Hq * D;
    const got = await readF32(ctx, out);
    const one = await readF32(ctx, single);
    const ref = attentionRef(qs, ks, vs, s, scaling);
    expect(compareToRef(got.subarray(0, n), ref.y, ref.scale), what).toBeNull();
    expect(guardIntact(got, n), `wrote past out (${what})`).toBe(true);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - one[i]) / Math.max(1, Math.abs(one[i])));
    expect(worst, `split vs single pass (${what})`).toBeLessThanOrEqual(1e-6);
  } finally {
    for (const b of [q, kAll, vAll, kCache, vCache, out, single]) b.destroy();
  }
}

describe('split decode attention', () => {
  const SPLITS = [1, 2, 7, 16];

  it('matches float64 and the single pass: base 0, 65, 299; splits 1, 2, 7, 16; heads 4/2, D 64', async () => {
    let seed = 7000;
    for (const base of [0, 65, 299]) {
      for (const splits of SPLITS) await checkSplit({ T: 1, Hq: 4, Hkv: 2, D: 64, base }, splits, (seed += 10));
    }
  });

  it('window, soft-capping and mask start (including a query that sees no key)', async () => {
    let seed = 8000;
    const shapes: Shape[] = [
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 299, window: 70 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 299, window: 5 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 299, softCap: 2 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 299, maskStart: 250 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 299, maskStart: 100, window: 150, softCap: 5 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 65, maskStart: 65 },
      { T: 1, Hq: 4, Hkv: 2, D: 64, base: 65, maskStart: 80 },
    ];
    for (const s of shapes) {
      for (const splits of SPLITS) await checkSplit(s, splits, (seed += 10), s.softCap ? 3 : 1);
    }
  });

  it('setStep decodes token after token with one prepared pair', async () => {
    const Hq = 4;
    const Hkv = 2;
    const D = 64;
    const steps = 6;
    const maxSeq = 8;
    const row = Hkv * D;
    const ks = randomF32(steps * row, 91);
    const vs = randomF32(steps * row, 92);
    const qs = randomF32(steps * Hq * D, 93);
    const scaling = 1 / Math.sqrt(D);
    const q = input(ctx, new Float32Array(Hq * D), 'test/q');
    const kNew = input(ctx, new Float32Array(row), 'test/k-new');
    const vNew = input(ctx, new Float32Array(row), 'test/v-new');
    const kCache = poisonedF32(ctx, maxSeq * row, 'test/k-cache');
    const vCache = poisonedF32(ctx, maxSeq * row, 'test/v-cache');
    const out = poisonedF32(ctx, Hq * D, 'test/out');
    const write = prepareKvWrite(ctx, { k: kNew, v: vNew, kCache, vCache, tokens: 1, kvHeads: Hkv, headDim: D, maxSeq });
    const attn = prepareSplitDecodeAttention(ctx, {
      q, kCache, vCache, out, tokens: 1, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling, splits: 3,
    });
    try {
      for (let p = 0; p < steps; p++) {
        ctx.device.queue.writeBuffer(q, 0, new Float32Array(qs.subarray(p * Hq * D, (p + 1) * Hq * D)));
        ctx.device.queue.writeBuffer(kNew, 0, new Float32Array(ks.subarray(p * row, (p + 1) * row)));
        ctx.device.queue.writeBuffer(vNew, 0, new Float32Array(vs.subarray(p * row, (p + 1) * row)));
        write.setStep(p);
        attn.setStep(p);
        const encoder = ctx.device.createCommandEncoder();
        recordDispatches(encoder, [write, ...attn.dispatches]);
        ctx.device.queue.submit([encoder.finish()]);
        const got = await readF32(ctx, out);
        const ref = attentionRef(qs.slice(p * Hq * D), ks, vs, { T: 1, Hq, Hkv, D, base: p }, scaling);
        expect(compareToRef(got.subarray(0, Hq * D), ref.y, ref.scale), `step ${p}`).toBeNull();
        expect(guardIntact(got, Hq * D)).toBe(true);
      }
      expect(() => attn.setStep(maxSeq)).toThrow(GPUValidationError);
    } finally {
      disposeDispatch(write);
      for (const d of attn.dispatches) disposeDispatch(d);
      for (const b of [q, kNew, vNew, kCache, vCache, out]) b.destroy();
    }
  });

  it('rejects a bad splits count', () => {
    const D = 16;
    const q = input(ctx, new Float32Array(4 * D), 'q');
    const cache = input(ctx, new Float32Array(10 * 2 * D), 'cache');
    const cache2 = input(ctx, new Float32Array(10 * 2 * D), 'cache2');
    const out = input(ctx, new Float32Array(4 * D), 'out');
    const args = { q, kCache: cache, vCache: cache2, out, tokens: 1, heads: 4, kvHeads: 2, headDim: D, maxSeq: 10, scaling: 0.25 };
    try {
      for (const splits of [0, 1.5, 257]) {
        expect(() => prepareSplitDecodeAttention(ctx, { ...args, splits })).toThrow(GPUValidationError);
        expect(() => prepareSplitDecodeAttention(ctx, { ...args, splits })).toThrow(/splits must be an integer in 1\.\.256/);
      }
    } finally {
      for (const b of [q, cache, cache2, out]) b.destroy();
    }
  });
});
