import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareAttention, prepareKvWrite, prepareSplitDecodeAttention } from '../../src/kernels/attention.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { randomF32 } from '../helpers/random.js';
import { compareToRef } from '../helpers/reference.js';
import { GUARD, guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';
import { writeBuffer } from '../../src/runtime/buffers.js';

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
  /** Multiplies q·k; default head_dim^-0.5 (Gemma-2: query_pre_attn_scalar^-0.5). */
  scaling?: number;
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
  const scaling = s.scaling ?? 1 / Math.sqrt(D);
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
          maskStart: s.maskStart, window: s.window, softCap: s.softCap, serial: serialKernel,
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

/** Which attention kernel the suites below force (each runs with both). */
let serialKernel = false;

describe.each([false, true])('attention against float64 (serial kernel: %s)', (serial) => {
  beforeAll(() => {
    serialKernel = serial;
  });
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

  it('scaling other than head_dim^-0.5 (query_pre_attn_scalar), alone and with soft-cap and window', async () => {
    let seed = 6500;
    await check({ T: 9, Hq: 4, Hkv: 2, D: 16, base: 0, scaling: 32 ** -0.5 }, (seed += 10), undefined, 2);
    await check({ T: 11, Hq: 4, Hkv: 2, D: 16, base: 3, scaling: 32 ** -0.5, softCap: 2.5, window: 8 }, (seed += 10), undefined, 3);
    await check({ T: 1, Hq: 3, Hkv: 1, D: 24, base: 40, scaling: 0.7, softCap: 1.5, window: 8 }, (seed += 10), undefined, 3);
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

/**
 * A left-padded batch: B sequences with caches (B, maxSeq, Hkv, D), queries and outputs (B, n, Hq, D) packed by the
 * step's token count n. One kv-write and one attention dispatch (single pass, or split when `splits` is set) are
 * prepared for the largest step and driven by `setStep`.
 */
interface BatchCase {
  B: number;
  Hq: number;
  Hkv: number;
  D: number;
  maxSeq: number;
  /** rowMaskStart per row; omitted: no buffer is passed (the dispatch binds its own zeros). */
  rowMask?: number[];
  maskStart?: number;
  window?: number;
  softCap?: number;
  splits?: number;
  /** (base, tokens) of each step, contiguous from position 0; each step writes its keys, then attends. */
  steps: [number, number][];
  amplitude?: number;
}

/** Index of the first element of `got` that differs from `want` (NaN matches NaN), or −1. */
function firstMismatch(got: Float32Array, want: Float32Array): number {
  for (let i = 0; i < want.length; i++) {
    if (!(Object.is(got[i], want[i]) || got[i] === want[i])) return i;
  }
  return got.length === want.length ? -1 : want.length;
}

async function checkBatch(c: BatchCase, seed: number): Promise<void> {
  const { B, Hq, Hkv, D, maxSeq } = c;
  const row = Hkv * D;
  const qRow = Hq * D;
  const maxT = Math.max(...c.steps.map(([, n]) => n));
  const amp = c.amplitude ?? 1;
  const scaling = 1 / Math.sqrt(D);
  const what = JSON.stringify({ ...c, steps: undefined });
  // Row b's keys, values and queries at every position.
  const ks = Array.from({ length: B }, (_, b) => randomF32(maxSeq * row, seed + 10 * b + 1, amp));
  const vs = Array.from({ length: B }, (_, b) => randomF32(maxSeq * row, seed + 10 * b + 2));
  const qs = Array.from({ length: B }, (_, b) => randomF32(maxSeq * qRow, seed + 10 * b + 3, amp));
  // Inputs start as NaN: a kernel reading past the packed step would put NaN where it must not.
  const kIn = poisonedF32(ctx, B * maxT * row, 'test/k-new');
  const vIn = poisonedF32(ctx, B * maxT * row, 'test/v-new');
  const q = poisonedF32(ctx, B * maxT * qRow, 'test/q');
  const kCache = poisonedF32(ctx, B * maxSeq * row, 'test/k-cache');
  const vCache = poisonedF32(ctx, B * maxSeq * row, 'test/v-cache');
  const out = poisonedF32(ctx, B * maxT * qRow, 'test/out');
  const rowMaskStart = c.rowMask ? input(ctx, new Uint32Array(c.rowMask), 'test/row-mask-start') : undefined;
  const buffers = [kIn, vIn, q, kCache, vCache, out, ...(rowMaskStart ? [rowMaskStart] : [])];
  const prepared = await ctx.checked('preparing batched attention', () => {
    const write = prepareKvWrite(ctx, {
      k: kIn, v: vIn, kCache, vCache, tokens: maxT, kvHeads: Hkv, headDim: D, maxSeq, batch: B,
    });
    const common = {
      q, kCache, vCache, out, tokens: maxT, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling, batch: B,
      rowMaskStart, maskStart: c.maskStart, window: c.window, softCap: c.softCap, serial: serialKernel,
    };
    if (c.splits !== undefined) {
      const split = prepareSplitDecodeAttention(ctx, { ...common, splits: c.splits });
      expect(split.dispatches[0].workgroups).toEqual([maxT, Hq, B * c.splits]);
      expect(split.dispatches[1].workgroups).toEqual([maxT, Hq, B]);
      expect(split.dispatches[0].owned.length, 'partial pass owns params, partials (+ zero row mask)').toBe(
        rowMaskStart ? 2 : 3,
      );
      return { write, attn: split, list: [write, ...split.dispatches] };
    }
    const attn = prepareAttention(ctx, common);
    expect(attn.workgroups).toEqual([maxT, Hq, B]);
    expect(attn.owned.length, 'attention owns params (+ zero row mask)').toBe(rowMaskStart ? 1 : 2);
    return { write, attn, list: [write, attn] };
  });
  const { write, attn, list } = prepared;
  expect(write.workgroups).toEqual([Math.ceil((maxT * row) / 256), B, 1]);
  // What the caches must hold: written positions of every row, NaN elsewhere (and in the guard).
  const wantK = new Float32Array(B * maxSeq * row + GUARD).fill(NaN);
  const wantV = new Float32Array(B * maxSeq * row + GUARD).fill(NaN);
  try {
    for (const [base, n] of c.steps) {
      const step = `${what} step base ${base} tokens ${n}`;
      const kStep = new Float32Array(B * n * row);
      const vStep = new Float32Array(B * n * row);
      const qStep = new Float32Array(B * n * qRow);
      for (let b = 0; b < B; b++) {
        kStep.set(ks[b].subarray(base * row, (base + n) * row), b * n * row);
        vStep.set(vs[b].subarray(base * row, (base + n) * row), b * n * row);
        qStep.set(qs[b].subarray(base * qRow, (base + n) * qRow), b * n * qRow);
        wantK.set(ks[b].subarray(base * row, (base + n) * row), (b * maxSeq + base) * row);
        wantV.set(vs[b].subarray(base * row, (base + n) * row), (b * maxSeq + base) * row);
      }
      writeBuffer(ctx, kIn, kStep);
      writeBuffer(ctx, vIn, vStep);
      writeBuffer(ctx, q, qStep);
      writeBuffer(ctx, out, new Float32Array(B * maxT * qRow + GUARD).fill(NaN));
      write.setStep(base, n);
      attn.setStep(base, n);
      await ctx.checked('running batched attention', () => {
        const encoder = ctx.device.createCommandEncoder({ label: 'test' });
        recordDispatches(encoder, list);
        ctx.device.queue.submit([encoder.finish()]);
      });
      const kBack = await readF32(ctx, kCache);
      const vBack = await readF32(ctx, vCache);
      expect(firstMismatch(kBack, wantK), `k cache element (${step})`).toBe(-1);
      expect(firstMismatch(vBack, wantV), `v cache element (${step})`).toBe(-1);
      const got = await readF32(ctx, out);
      for (let b = 0; b < B; b++) {
        const start = Math.max(c.maskStart ?? 0, c.rowMask?.[b] ?? 0);
        const shape: Shape = { T: n, Hq, Hkv, D, base, maskStart: start, window: c.window, softCap: c.softCap };
        const ref = attentionRef(qStep.subarray(b * n * qRow, (b + 1) * n * qRow), ks[b], vs[b], shape, scaling);
        const rowGot = got.subarray(b * n * qRow, (b + 1) * n * qRow);
        expect(compareToRef(rowGot, ref.y, ref.scale), `row ${b} (${step})`).toBeNull();
      }
      // Past the packed B·n rows nothing is written, guard included.
      expect([...got.subarray(B * n * qRow)].every(Number.isNaN), `wrote past B·n rows (${step})`).toBe(true);
      expect(guardIntact(got, B * maxT * qRow), `wrote past out (${step})`).toBe(true);
    }
  } finally {
    for (const d of list) disposeDispatch(d);
    for (const b of buffers) b.destroy();
  }
}

describe.each([false, true])('batched attention (left-padded rows, one dispatch; serial kernel: %s)', (serial) => {
  beforeAll(() => {
    serialKernel = serial;
  });
  const PREFILL_DECODE: [number, number][] = [
    [0, 5],
    [5, 1],
    [6, 1],
  ];

  it('batch 3, row mask starts 0, 2, 5: prefill of 5 then decode steps of 1 (D 7, heads 4/2, maxSeq 13)', async () => {
    await checkBatch({ B: 3, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, rowMask: [0, 2, 5], steps: PREFILL_DECODE }, 9000);
  });

  it('batch 3, D 24: chunked prefill, maskStart combined with the row mask, and no row mask buffer', async () => {
    const steps: [number, number][] = [
      [0, 5],
      [5, 5],
      [10, 1],
    ];
    await checkBatch({ B: 3, Hq: 4, Hkv: 2, D: 24, maxSeq: 13, rowMask: [5, 0, 2], maskStart: 1, steps }, 9100);
    await checkBatch({ B: 3, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, steps: PREFILL_DECODE }, 9200);
  });

  it('batch 1 through the batched path, with and without a row mask', async () => {
    await checkBatch({ B: 1, Hq: 4, Hkv: 2, D: 24, maxSeq: 13, rowMask: [2], steps: PREFILL_DECODE }, 9300);
    await checkBatch({ B: 1, Hq: 4, Hkv: 1, D: 7, maxSeq: 13, steps: [[0, 5]] }, 9400);
  });

  it('batch 2 with a sliding window and soft-capping', async () => {
    const steps: [number, number][] = [
      [0, 5],
      [5, 5],
      [10, 1],
    ];
    await checkBatch({ B: 2, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, rowMask: [0, 3], window: 3, steps }, 9500);
    await checkBatch(
      { B: 2, Hq: 4, Hkv: 2, D: 24, maxSeq: 13, rowMask: [1, 4], softCap: 2, amplitude: 3, steps: PREFILL_DECODE },
      9600,
    );
    await checkBatch(
      { B: 2, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, rowMask: [4, 0], maskStart: 2, window: 4, softCap: 1, amplitude: 3, steps },
      9700,
    );
  });

  it('split decode attention, batch 2: splits 1, 2, 3; window and soft-capping', async () => {
    let seed = 9800;
    for (const splits of [1, 2, 3]) {
      await checkBatch(
        { B: 2, Hq: 4, Hkv: 2, D: 24, maxSeq: 13, rowMask: [0, 4], splits, steps: PREFILL_DECODE },
        (seed += 10),
      );
    }
    await checkBatch({ B: 2, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, splits: 2, steps: PREFILL_DECODE }, (seed += 10));
    await checkBatch(
      {
        B: 2, Hq: 4, Hkv: 2, D: 7, maxSeq: 13, rowMask: [3, 0], window: 4, softCap: 2, amplitude: 3, splits: 3,
        steps: PREFILL_DECODE,
      },
      (seed += 10),
    );
  });

  it('the row mask is read at run time: rewriting it changes the next step', async () => {
    const B = 2;
    const Hq = 4;
    const Hkv = 2;
    const D = 7;
    const maxSeq = 6;
    const T = 4;
    const row = Hkv * D;
    const ks = randomF32(B * T * row, 131);
    const vs = randomF32(B * T * row, 132);
    const qs = randomF32(B * T * Hq * D, 133);
    const scaling = 1 / Math.sqrt(D);
    const k = input(ctx, ks, 'test/k');
    const v = input(ctx, vs, 'test/v');
    const q = input(ctx, qs, 'test/q');
    const kCache = poisonedF32(ctx, B * maxSeq * row, 'test/k-cache');
    const vCache = poisonedF32(ctx, B * maxSeq * row, 'test/v-cache');
    const out = poisonedF32(ctx, B * T * Hq * D, 'test/out');
    const rowMaskStart = input(ctx, new Uint32Array([0, 0]), 'test/row-mask-start');
    const write = prepareKvWrite(ctx, { k, v, kCache, vCache, tokens: T, kvHeads: Hkv, headDim: D, maxSeq, batch: B });
    const attn = prepareAttention(ctx, {
      q, kCache, vCache, out, tokens: T, heads: Hq, kvHeads: Hkv, headDim: D, maxSeq, scaling, batch: B, rowMaskStart,
    });
    try {
      for (const mask of [
        [0, 0],
        [3, 1],
      ]) {
        writeBuffer(ctx, rowMaskStart, new Uint32Array(mask));
        await ctx.checked('row mask step', () => {
          const encoder = ctx.device.createCommandEncoder();
          recordDispatches(encoder, [write, attn]);
          ctx.device.queue.submit([encoder.finish()]);
        });
        const got = await readF32(ctx, out);
        for (let b = 0; b < B; b++) {
          const n = T * Hq * D;
          const ref = attentionRef(
            qs.subarray(b * n, (b + 1) * n),
            ks.subarray(b * T * row, (b + 1) * T * row),
            vs.subarray(b * T * row, (b + 1) * T * row),
            { T, Hq, Hkv, D, base: 0, maskStart: mask[b] },
            scaling,
          );
          expect(compareToRef(got.subarray(b * n, (b + 1) * n), ref.y, ref.scale), `row ${b} mask ${mask}`).toBeNull();
        }
        expect(guardIntact(got, B * T * Hq * D)).toBe(true);
      }
    } finally {
      disposeDispatch(write);
      disposeDispatch(attn);
      for (const b of [k, v, q, kCache, vCache, out, rowMaskStart]) b.destroy();
    }
  });

  it('kv-write with a batch writes exactly its slots of every row', async () => {
    const B = 3;
    const Hkv = 2;
    const D = 3;
    const maxSeq = 7;
    const row = Hkv * D;
    const maxT = 4;
    const kCache = poisonedF32(ctx, B * maxSeq * row, 'test/k-cache');
    const vCache = poisonedF32(ctx, B * maxSeq * row, 'test/v-cache');
    const k = poisonedF32(ctx, B * maxT * row, 'test/k-new');
    const v = poisonedF32(ctx, B * maxT * row, 'test/v-new');
    const write = prepareKvWrite(ctx, {
      k, v, kCache, vCache, tokens: maxT, kvHeads: Hkv, headDim: D, maxSeq, batch: B, start: 1,
    });
    const wantK = new Float32Array(B * maxSeq * row + GUARD).fill(NaN);
    const wantV = new Float32Array(B * maxSeq * row + GUARD).fill(NaN);
    try {
      // The prepared step (start 1, 4 tokens), then a shorter one (start 5, 2 tokens) packed by its 2 tokens.
      for (const [start, n, seed] of [
        [1, 4, 141],
        [5, 2, 151],
      ]) {
        const ks = randomF32(B * n * row, seed);
        const vs = randomF32(B * n * row, seed + 1);
        writeBuffer(ctx, k, ks);
        writeBuffer(ctx, v, vs);
        if (start !== 1) write.setStep(start, n);
        for (let b = 0; b < B; b++) {
          wantK.set(ks.subarray(b * n * row, (b + 1) * n * row), (b * maxSeq + start) * row);
          wantV.set(vs.subarray(b * n * row, (b + 1) * n * row), (b * maxSeq + start) * row);
        }
        await ctx.checked('kv-write', () => {
          const encoder = ctx.device.createCommandEncoder();
          recordDispatches(encoder, [write]);
          ctx.device.queue.submit([encoder.finish()]);
        });
        expect(firstMismatch(await readF32(ctx, kCache), wantK), `k cache, start ${start}`).toBe(-1);
        expect(firstMismatch(await readF32(ctx, vCache), wantV), `v cache, start ${start}`).toBe(-1);
      }
      expect(() => write.setStep(4, 4)).toThrow(/setStep: start must be an integer with start \+ tokens ≤ maxSeq/);
    } finally {
      disposeDispatch(write);
      for (const b of [k, v, kCache, vCache]) b.destroy();
    }
  });

  it('validates batch, sizes with the batch, the row mask and grid limits', () => {
    const D = 16;
    const B = 2;
    const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
    const q = input(ctx, new Float32Array(B * 4 * 4 * D), 'q');
    const q1 = input(ctx, new Float32Array(4 * 4 * D), 'q1');
    const cache = input(ctx, new Float32Array(B * 10 * 2 * D), 'cache');
    const cache2 = input(ctx, new Float32Array(B * 10 * 2 * D), 'cache2');
    const out = input(ctx, new Float32Array(B * 4 * 4 * D), 'out');
    const mask = input(ctx, new Uint32Array(B), 'mask');
    const short = input(ctx, new Uint32Array(1), 'short');
    const base = {
      q, kCache: cache, vCache: cache2, out, tokens: 4, heads: 4, kvHeads: 2, headDim: D, maxSeq: 10, scaling: 0.25,
      batch: B, rowMaskStart: mask,
    };
    const kv = { k: q1, v: out, kCache: cache, vCache: cache2, tokens: 2, kvHeads: 2, headDim: D, maxSeq: 10, batch: B };
    try {
      const err = (f: () => unknown, re: RegExp) => {
        expect(f).toThrow(GPUValidationError);
        expect(f).toThrow(re);
      };
      for (const batch of [0, 1.5, -1]) {
        err(() => prepareAttention(ctx, { ...base, batch }), /attention .*batch must be a positive integer/);
        err(() => prepareSplitDecodeAttention(ctx, { ...base, batch, splits: 2 }), /batch must be a positive integer/);
        err(() => prepareKvWrite(ctx, { ...kv, batch }), /kv-write .*batch must be a positive integer/);
      }
      err(() => prepareAttention(ctx, { ...base, q: q1 }), /buffer q \("q1"\) .* batch×tokens×heads×headDim f32 needs/);
      err(() => prepareAttention(ctx, { ...base, batch: 3 }), /buffer q \("q"\)/);
      err(() => prepareAttention(ctx, { ...base, rowMaskStart: short }), /buffer rowMaskStart \("short"\) holds 4 bytes but batch u32 needs 8/);
      err(() => prepareSplitDecodeAttention(ctx, { ...base, rowMaskStart: short, splits: 2 }), /buffer rowMaskStart \("short"\)/);
      err(() => prepareAttention(ctx, { ...base, rowMaskStart: out }), /rowMaskStart must not be the same buffer as out/);
      err(() => prepareAttention(ctx, { ...base, batch: maxGroups + 1 }), /batch \(\d+\) is above this GPU's limit/);
      err(
        () => prepareSplitDecodeAttention(ctx, { ...base, splits: 256, batch: Math.floor(maxGroups / 256) + 1 }),
        /batch·splits \(\d+\) is above this GPU's limit/,
      );
      err(() => prepareKvWrite(ctx, { ...kv, batch: 3 }), /buffer kCache \("cache"\) .* batch×maxSeq×kvHeads×headDim/);
      err(() => prepareKvWrite(ctx, { ...kv, batch: 20_000_000 }), /batch·maxSeq·kvHeads·headDim \(6400000000\) does not fit a u32 index/);
      // Batch 2 with a 2-row mask prepares; no row mask makes a zero buffer the dispatch owns.
      const ok = prepareAttention(ctx, base);
      const own = prepareAttention(ctx, { ...base, rowMaskStart: undefined });
      expect(ok.batch).toBe(B);
      expect(ok.owned.length).toBe(1);
      expect(own.owned.length).toBe(2);
      expect(own.owned[1].size).toBeGreaterThanOrEqual(B * 4);
      disposeDispatch(ok);
      disposeDispatch(own);
    } finally {
      for (const b of [q, q1, cache, cache2, out, mask, short]) b.destroy();
    }
  });
});
