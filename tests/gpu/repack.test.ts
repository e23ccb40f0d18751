// The GPU repack of pre-quantized AWQ / GPTQ Linears into our q4 layout (kernels/repack.ts), word for word against
// CPU packers written from the published packing code and from our format's description. Chromium and Node + Dawn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUValidationError } from '../../src/errors.js';
import { preparePackGroupParams, prepareRepack, type PrequantizedMethod } from '../../src/kernels/repack.js';
import { quantizedBytes, type QuantGroup } from '../../src/kernels/quant.js';
import type { KernelDispatch } from '../../src/kernels/dispatch.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { guardIntact, input, poisonedU32, readU32, run } from '../helpers/gpu-run.js';
import { ourQ4, packAwq, packGptq, randomPrequant, type Prequant } from '../helpers/prequant-reference.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

type Variant = { method: PrequantizedMethod; v1: boolean; name: string };
const VARIANTS: Variant[] = [
  { method: 'awq', v1: false, name: 'AWQ gemm' },
  { method: 'gptq', v1: true, name: 'GPTQ v1' },
  { method: 'gptq', v1: false, name: 'GPTQ v2' },
];

function packed(v: Variant, p: Prequant) {
  const t = v.method === 'awq' ? packAwq(p) : packGptq(p, v.v1);
  return {
    qweight: input(ctx, t.qweight, 'test/qweight'),
    qzeros: input(ctx, t.qzeros, 'test/qzeros'),
    scales: input(ctx, t.scales, 'test/scales'),
  };
}

/**
 * Repacks the tensors `parts` (stacked by rows, in that order) into a slot split in chunks of `chunkRows` rows and
 * checks every chunk's q, scales and zeros against ourQ4 of its rows, with poisoned outputs and guards.
 */
async function checkSlot(v: Variant, parts: Prequant[], chunkRows: number): Promise<void> {
  const K = parts[0]!.K;
  const G = parts[0]!.G as QuantGroup;
  const total = parts.reduce((n, p) => n + p.N, 0);
  const tensors = parts.map((p) => packed(v, p));
  for (let first = 0; first < total; first += chunkRows) {
    const rows = Math.min(chunkRows, total - first);
    const sizes = quantizedBytes({ bits: 4, N: rows, K, group: G });
    const q = poisonedU32(ctx, sizes.q / 4, 'test/q');
    const scales = poisonedU32(ctx, sizes.scales / 4, 'test/out-scales');
    const zeros = poisonedU32(ctx, sizes.zeros / 4, 'test/out-zeros');
    const scaleEl = poisonedU32(ctx, rows * sizes.blocks, 'test/scaleEl');
    const zeroEl = poisonedU32(ctx, rows * sizes.blocks, 'test/zeroEl');
    await run(ctx, () => {
      const list: KernelDispatch[] = [];
      let offset = 0;
      parts.forEach((p, i) => {
        const lo = Math.max(offset, first);
        const hi = Math.min(offset + p.N, first + rows);
        if (lo < hi) {
          list.push(
            prepareRepack(ctx, {
              method: v.method,
              group: G,
              partRows: p.N,
              K,
              zeroOffset: v.v1 ? 1 : 0,
              ...tensors[i]!,
              srcRow0: lo - offset,
              rows: hi - lo,
              dstRow0: lo - first,
              chunkRows: rows,
              q,
              scaleEl,
              zeroEl,
            }),
          );
        }
        offset += p.N;
      });
      list.push(preparePackGroupParams(ctx, { rows, K, group: G, scaleEl, zeroEl, scales, zeros }));
      return list;
    });
    // The expected chunk: the rows of each part it holds, concatenated.
    const want = { q: [] as number[], s: [] as number[], z: [] as number[] };
    const merged = mergeRows(parts, first, rows);
    const ref = ourQ4(merged);
    want.q = [...ref.q];
    want.s = [...ref.scales];
    want.z = [...ref.zeros];
    const got = { q: await readU32(ctx, q), s: await readU32(ctx, scales), z: await readU32(ctx, zeros) };
    const where = `${v.name} ${parts.map((p) => p.N).join('+')}×${K} g${G}, chunk rows ${first}…${first + rows}`;
    expect([...got.q.subarray(0, want.q.length)], `${where}: q`).toEqual(want.q);
    expect([...got.s.subarray(0, want.s.length)], `${where}: scales`).toEqual(want.s);
    expect([...got.z.subarray(0, want.z.length)], `${where}: zeros`).toEqual(want.z);
    expect(guardIntact(got.q, want.q.length) && guardIntact(got.s, want.s.length) && guardIntact(got.z, want.z.length), `${where}: guards`).toBe(true);
    for (const b of [q, scales, zeros, scaleEl, zeroEl]) b.destroy();
  }
  for (const t of tensors) for (const b of Object.values(t)) b.destroy();
}

/** Rows [first, first + rows) of the parts stacked, as one Prequant. */
function mergeRows(parts: Prequant[], first: number, rows: number): Prequant {
  const { K, G, blocks } = parts[0]!;
  const out: Prequant = { N: rows, K, G, blocks, q: new Uint8Array(rows * K), z: new Uint8Array(rows * blocks), s: new Uint16Array(rows * blocks) };
  let offset = 0;
  for (const p of parts) {
    for (let n = 0; n < p.N; n++) {
      const r = offset + n - first;
      if (r < 0 || r >= rows) continue;
      out.q.set(p.q.subarray(n * K, (n + 1) * K), r * K);
      out.z.set(p.z.subarray(n * blocks, (n + 1) * blocks), r * blocks);
      out.s.set(p.s.subarray(n * blocks, (n + 1) * blocks), r * blocks);
    }
    offset += p.N;
  }
  return out;
}

describe.each(VARIANTS)('$name', (v) => {
  // N multiples of 8 (both formats pack zero points 8 outputs per int32); K multiples of 8; partial last groups.
  const SHAPES: Array<[number, number, QuantGroup]> = [
    [8, 8, 32],
    [8, 32, 32],
    [24, 40, 32],
    [16, 200, 64],
    [72, 704, 128],
    [8, 4104, 128],
  ];
  it.each(SHAPES)('N %i × K %i, group %i: every word of q, scales and zeros', async (N, K, G) => {
    await checkSlot(v, [randomPrequant(N, K, G, N * 31 + K, v.v1 ? 1 : 0)], N);
  });

  it('two stacked tensors (gate + up) in row chunks of odd size: shared scale and zero words at every boundary', async () => {
    const parts = [randomPrequant(16, 96, 32, 5, v.v1 ? 1 : 0), randomPrequant(24, 96, 32, 6, v.v1 ? 1 : 0)];
    for (const chunk of [40, 13, 7, 1]) await checkSlot(v, parts, chunk);
  });
});

describe('argument checks', () => {
  it('N not a multiple of 8, GPTQ K not a multiple of 8, rows out of range: GPUValidationError', () => {
    const b = poisonedU32(ctx, 1024);
    const base = {
      method: 'gptq' as const,
      group: 32 as const,
      partRows: 8,
      K: 32,
      zeroOffset: 0 as const,
      qweight: b,
      qzeros: b,
      scales: b,
      srcRow0: 0,
      rows: 8,
      dstRow0: 0,
      chunkRows: 8,
      q: b,
      scaleEl: b,
      zeroEl: b,
    };
    expect(() => prepareRepack(ctx, { ...base, partRows: 12, rows: 12, chunkRows: 12 })).toThrow(/multiple of 8/);
    expect(() => prepareRepack(ctx, { ...base, K: 36 })).toThrow(GPUValidationError);
    expect(() => prepareRepack(ctx, { ...base, rows: 9 })).toThrow(/outside/);
    expect(() => prepareRepack(ctx, { ...base, dstRow0: 1 })).toThrow(/outside the chunk/);
    b.destroy();
  });
});
