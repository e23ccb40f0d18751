import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { DECODE_STEP_KEY, prepareDecodeStep } from '../../src/kernels/decode-step.js';
import { disposeDispatch, recordDispatches } from '../../src/kernels/dispatch.js';
import { uploadBuffer, writeBuffer } from '../../src/runtime/buffers.js';
import { rng } from '../helpers/random.js';
import { GUARD, guardIntact, input, poisonedU32, readU32 } from '../helpers/gpu-run.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

const POISON = 0xffffffff;

/** A u32 buffer holding `data` followed by GUARD poisoned words. */
function guarded(data: Uint32Array, label: string): GPUBuffer {
  const all = new Uint32Array(data.length + GUARD).fill(POISON);
  all.set(data);
  return uploadBuffer(ctx, label, all);
}

/** The CPU model of one step. */
function stepRef(tokens: Uint32Array, history: Uint32Array, counts: Uint32Array, positions: Uint32Array, stride: number) {
  for (let r = 0; r < tokens.length; r++) {
    if (counts[r] < stride) {
      history[r * stride + counts[r]] = tokens[r];
      counts[r]++;
    }
    positions[r] = (positions[r] + 1) >>> 0;
  }
}

/**
 * Runs `steps` decode steps on `rows` rows with history rows of `stride`, starting from `initialCounts`: each
 * submit writes new tokens and records the prepared dispatch `perSubmit` times in one pass (the same tokens
 * appended again). Checks history, counts and positions against the CPU model after every submit.
 */
async function check(rows: number, stride: number, initialCounts: number[], steps: number, seed: number, perSubmit = 1, maxWg?: number) {
  const r = rng(seed);
  const history = new Uint32Array(rows * stride).fill(POISON);
  const counts = Uint32Array.from(initialCounts);
  for (let row = 0; row < rows; row++) {
    for (let i = 0; i < Math.min(counts[row], stride); i++) history[row * stride + i] = Math.floor(r() * 150000);
  }
  const positions = Uint32Array.from({ length: rows }, (_, i) => (i === rows - 1 ? 0xfffffffe : Math.floor(r() * 4096)));
  const tokens = new Uint32Array(rows);
  const tokBuf = input(ctx, tokens, 'test/tokens');
  const histBuf = guarded(history, 'test/history');
  const countBuf = guarded(counts, 'test/counts');
  const posBuf = guarded(positions, 'test/positions');
  const what = `rows=${rows} stride=${stride} perSubmit=${perSubmit}`;
  const d = prepareDecodeStep(ctx, {
    tokens: tokBuf,
    history: { ids: histBuf, counts: countBuf, stride },
    positions: posBuf,
    rows,
    maxWorkgroupsPerDimension: maxWg,
  });
  try {
    for (let s = 0; s < steps; s++) {
      for (let i = 0; i < rows; i++) tokens[i] = Math.floor(r() * 150000);
      if (s === 1) tokens[0] = 0; // token 0 and the largest u32 are ids like any other
      if (s === 2) tokens[rows - 1] = 0xfffffffe;
      writeBuffer(ctx, tokBuf, tokens);
      await ctx.checked('decode step', () => {
        const encoder = ctx.device.createCommandEncoder({ label: 'test' });
        recordDispatches(encoder, Array(perSubmit).fill(d));
        ctx.device.queue.submit([encoder.finish()]);
      });
      for (let k = 0; k < perSubmit; k++) stepRef(tokens, history, counts, positions, stride);

      const [gotHist, gotCounts, gotPos] = await Promise.all([readU32(ctx, histBuf), readU32(ctx, countBuf), readU32(ctx, posBuf)]);
      const at = `${what} after submit ${s + 1}`;
      expect([...gotCounts.subarray(0, rows)], `${at}: counts`).toEqual([...counts]);
      expect([...gotPos.subarray(0, rows)], `${at}: positions`).toEqual([...positions]);
      expect([...gotHist.subarray(0, rows * stride)], `${at}: history`).toEqual([...history]);
      expect(guardIntact(gotHist, rows * stride), `${at}: wrote past history`).toBe(true);
      expect(guardIntact(gotCounts, rows), `${at}: wrote past counts`).toBe(true);
      expect(guardIntact(gotPos, rows), `${at}: wrote past positions`).toBe(true);
    }
    // The states the steps were meant to reach: every row that had room now holds more, none past stride.
    for (let row = 0; row < rows; row++) {
      const init = initialCounts[row];
      expect(counts[row]).toBe(init >= stride ? init : Math.min(stride, init + steps * perSubmit));
    }
  } finally {
    disposeDispatch(d);
    for (const b of [tokBuf, histBuf, countBuf, posBuf]) b.destroy();
  }
}

describe('decode step: append sampled tokens to the history, advance positions', () => {
  it('1 row, empty history, filling it exactly and going past it', async () => {
    await check(1, 4, [0], 6, 1);
  });

  it('3 rows, counts near the stride limit (stride − 2, stride − 1, stride)', async () => {
    await check(3, 5, [3, 4, 5], 4, 2);
  });

  it('65 rows (two workgroups), counts from 0 to beyond the stride', async () => {
    const stride = 7;
    await check(65, stride, Array.from({ length: 65 }, (_, i) => i % (stride + 3)), 5, 3);
  });

  it('the prepared dispatch recorded several times in one pass, and on a capped 2-D grid', async () => {
    await check(3, 6, [0, 2, 5], 3, 4, 3);
    await check(65, 3, Array.from({ length: 65 }, (_, i) => i % 4), 2, 5, 2);
    await check(130, 2, Array.from({ length: 130 }, (_, i) => i % 3), 2, 6, 1, 2); // 3 groups → 2 × 2
  });

  it('stride 1', async () => {
    await check(3, 1, [0, 1, 0], 3, 7);
  });

  it('one pipeline', () => {
    expect(ctx.pipelines.size).toBe(1);
    expect(DECODE_STEP_KEY).toMatch(/^decode-step/);
  });
});

describe('decode step validation', () => {
  it('rejects bad sizes, buffers too small and shared buffers, naming them', () => {
    const tokens = input(ctx, new Uint32Array(3), 'tokens3');
    const ids = input(ctx, new Uint32Array(14), 'ids-14'); // 3 rows of stride 4 and 2 spare
    const counts = poisonedU32(ctx, 3, 'counts');
    const positions = poisonedU32(ctx, 3, 'positions');
    const small = input(ctx, new Uint32Array(2), 'two-words');
    const base = { tokens, history: { ids, counts, stride: 4 }, positions, rows: 3 };
    try {
      disposeDispatch(prepareDecodeStep(ctx, base));
      expect(() => prepareDecodeStep(ctx, { ...base, history: { ids, counts, stride: 5 } })).toThrow(
        /buffer history\.ids \("ids-14"\) holds 56 bytes but rows×stride u32 needs 60/,
      );
      expect(() => prepareDecodeStep(ctx, { ...base, tokens: small })).toThrow(/buffer tokens \("two-words"\)/);
      expect(() => prepareDecodeStep(ctx, { ...base, positions: small })).toThrow(/buffer positions \("two-words"\)/);
      expect(() => prepareDecodeStep(ctx, { ...base, history: { ids, counts: small, stride: 4 } })).toThrow(/buffer history\.counts/);
      expect(() => prepareDecodeStep(ctx, { ...base, rows: 0 })).toThrow(/rows must be a positive integer/);
      expect(() => prepareDecodeStep(ctx, { ...base, history: { ids, counts, stride: 0 } })).toThrow(/history\.stride must be a positive integer/);
      expect(() => prepareDecodeStep(ctx, { ...base, positions: counts })).toThrow(/history\.counts and positions are the same buffer/);
      expect(() => prepareDecodeStep(ctx, { ...base, tokens: positions })).toThrow(GPUValidationError);
      expect(() => prepareDecodeStep(ctx, { ...base, label: 'step', rows: 2.5 })).toThrow(/^decode-step "step": rows/);
    } finally {
      for (const b of [tokens, ids, counts, positions, small]) b.destroy();
    }
  });
});
