import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { GPUValidationError } from '../../src/errors.js';
import { prepareEmbedding } from '../../src/kernels/embedding.js';
import { packWeights, unpackWeights, WEIGHT_FORMATS, type WeightFormat } from '../../src/kernels/weight-format.js';
import { randomF32, rng } from '../helpers/random.js';
import { GUARD, guardIntact, input, poisonedF32, readF32, run } from '../helpers/gpu-run.js';
import { uploadBuffer } from '../../src/runtime/buffers.js';

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

/** Gathers with the given ids and checks every element exactly against float64 (table value · f32 scale). */
async function check(format: WeightFormat, vocab: number, hidden: number, ids: number[], seed: number, scale?: number, maxWg?: number) {
  const values = randomF32(vocab * hidden, seed, 2);
  const packed = packWeights(format, values);
  const stored = unpackWeights(format, packed, vocab * hidden); // what the kernel reads
  const table = input(ctx, packed, `table-${format}`);
  const idBuf = input(ctx, new Uint32Array(ids), 'ids');
  const tokens = ids.length;
  const out = poisonedF32(ctx, tokens * hidden);
  const what = `${format} vocab=${vocab} hidden=${hidden} tokens=${tokens} scale=${scale}`;
  try {
    await run(ctx, () => [
      prepareEmbedding(ctx, { table, format, ids: idBuf, out, tokens, vocab, hidden, scale, maxWorkgroupsPerDimension: maxWg }),
    ]);
    const got = await readF32(ctx, out);
    const s = Math.fround(scale ?? 1);
    for (let t = 0; t < tokens; t++) {
      for (let c = 0; c < hidden; c++) {
        const g = got[t * hidden + c];
        if (ids[t] >= vocab) {
          if (!Number.isNaN(g)) expect(g, `${what}: out-of-range id ${ids[t]} at token ${t} must give NaN`).toBeNaN();
          continue;
        }
        // One f32 multiply of an exactly stored value: the result is the float64 product rounded once.
        const ref = Math.fround(stored[ids[t] * hidden + c] * s);
        if (g !== ref) expect(g, `${what}: token ${t} (id ${ids[t]}) column ${c}`).toBe(ref);
      }
    }
    expect(guardIntact(got, tokens * hidden), `wrote past out (${what})`).toBe(true);
  } finally {
    table.destroy();
    idBuf.destroy();
    out.destroy();
  }
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

describe('embedding gather against float64', () => {
  for (const format of WEIGHT_FORMATS) {
    it(`${format}: tokens 1/7/63/65, hidden not a multiple of 4, first and last rows`, async () => {
      let seed = 10 * WEIGHT_FORMATS.indexOf(format);
      for (const tokens of [1, 7, 63, 65]) {
        for (const hidden of [1, 7, 13, 64]) {
          const vocab = 37;
          const ids = randomIds(tokens, vocab, seed);
          ids[0] = vocab - 1;
          if (tokens > 1) ids[tokens - 1] = 0;
          await check(format, vocab, hidden, ids, seed++);
        }
      }
    });

    it(`${format}: odd total element count (vocab·hidden odd), last element of the table`, async () => {
      // 5 × 7 = 35 elements: f16/bf16 fill 17.5 words, so the buffer is padded and the last element is a low half.
      await check(format, 5, 7, [4, 0, 4, 2, 3, 1, 4], 3);
      await check(format, 1, 1, [0], 4);
      await check(format, 3, 1, [2, 1, 0, 2], 5);
    });

    it(`${format}: hidden 4097, tokens 3, scaled by sqrt(hidden)`, async () => {
      await check(format, 11, 4097, [10, 0, 5], 6, Math.sqrt(4097));
    });

    it(`${format}: out-of-range ids give NaN rows and never read out of bounds`, async () => {
      await check(format, 9, 7, [0, 9, 8, 0xffffffff, 1000, 3, 2 ** 31], 7);
    });
  }

  it('Gemma normalizer in bf16: scale = bf16(sqrt(640)) = 25.25', async () => {
    await check('bf16', 13, 640, [12, 1, 0], 8, 25.25);
  });

  it('2-D grid: capped workgroups per dimension, and 4097 tokens', async () => {
    await check('f16', 50, 65, randomIds(63, 50, 9), 9, 1, 4); // 16 groups → 4 × 4
    await check('bf16', 31, 7, randomIds(4097, 31, 10), 10, 0.5, 11); // 113 groups → 11 × 11, last row partial
  });

  it('one pipeline per format', () => {
    expect(ctx.pipelines.size).toBe(WEIGHT_FORMATS.length);
  });
});

/** Output rows no dispatch writes keep this value (the guard after them stays NaN). */
const UNTOUCHED = -7.25;

/**
 * A (vocab, hidden) table split by rows into `parts` (each its own buffer), gathered by the dispatches of the parts
 * listed in `run` (indices into `parts`) into one output. Each output row must be the reference row when one of
 * the run parts holds its id, NaN when the id is ≥ vocab and the last part ran, and untouched otherwise.
 */
async function checkSplit(
  format: WeightFormat,
  vocab: number,
  hidden: number,
  parts: number[],
  runParts: number[],
  ids: number[],
  seed: number,
  scale?: number,
) {
  const values = randomF32(vocab * hidden, seed, 2);
  const stored = unpackWeights(format, packWeights(format, values), vocab * hidden);
  const tokens = ids.length;
  const idBuf = input(ctx, new Uint32Array(ids), 'ids');
  const init = new Float32Array(tokens * hidden + GUARD).fill(NaN);
  init.fill(UNTOUCHED, 0, tokens * hidden);
  const out = uploadBuffer(ctx, 'test/out', init);
  const tables: GPUBuffer[] = [];
  const starts: number[] = [];
  let first = 0;
  for (const rows of parts) {
    starts.push(first);
    tables.push(input(ctx, packWeights(format, values.subarray(first * hidden, (first + rows) * hidden)), `table-rows-${first}`));
    first += rows;
  }
  expect(first).toBe(vocab);
  const what = `${format} vocab=${vocab} split ${parts.join('+')} running ${runParts.join(',')} hidden=${hidden} scale=${scale}`;
  try {
    await run(ctx, () =>
      runParts.map((p) =>
        prepareEmbedding(ctx, {
          table: tables[p],
          format,
          ids: idBuf,
          out,
          tokens,
          vocab,
          hidden,
          scale,
          firstRow: starts[p],
          // The default (vocab − firstRow) for the last part, explicit for the others.
          tableRows: p === parts.length - 1 ? undefined : parts[p],
        }),
      ),
    );
    const got = await readF32(ctx, out);
    const s = Math.fround(scale ?? 1);
    const lastRan = runParts.includes(parts.length - 1);
    for (let t = 0; t < tokens; t++) {
      const id = ids[t];
      const owner = runParts.find((p) => id >= starts[p] && id < starts[p] + parts[p]);
      for (let c = 0; c < hidden; c++) {
        const g = got[t * hidden + c];
        const where = `${what}: token ${t} (id ${id}) column ${c}`;
        if (id >= vocab && lastRan) {
          if (!Number.isNaN(g)) expect(g, `${where} must be NaN`).toBeNaN();
        } else if (owner === undefined) {
          if (g !== UNTOUCHED) expect(g, `${where} must be untouched`).toBe(UNTOUCHED);
        } else {
          const ref = Math.fround(stored[id * hidden + c] * s);
          if (g !== ref) expect(g, where).toBe(ref);
        }
      }
    }
    expect(guardIntact(got, tokens * hidden), `wrote past out (${what})`).toBe(true);
  } finally {
    for (const b of [...tables, idBuf, out]) b.destroy();
  }
}

describe('embedding with the table split by rows (firstRow, tableRows)', () => {
  // Both sides of the split, its ends, an out-of-range id, repeats.
  const ids = [0, 19, 20, 36, 37, 20, 19, 0, 5, 0xffffffff, 36, 25, 19, 37];
  for (const format of WEIGHT_FORMATS) {
    it(`${format}: vocab 37 as 20 + 17, both parts, each part alone, scaled and not`, async () => {
      let seed = 300 + 10 * WEIGHT_FORMATS.indexOf(format);
      for (const hidden of [7, 8]) {
        await checkSplit(format, 37, hidden, [20, 17], [0, 1], ids, seed++);
        await checkSplit(format, 37, hidden, [20, 17], [1, 0], ids, seed++, 0.75);
        await checkSplit(format, 37, hidden, [20, 17], [0], ids, seed++, Math.sqrt(hidden));
        await checkSplit(format, 37, hidden, [20, 17], [1], ids, seed++);
      }
    });
  }

  it('three parts (odd row counts, odd element counts per part), and the whole table as one part', async () => {
    const some = [36, 0, 12, 13, 24, 25, 37, 12, 1];
    await checkSplit('f16', 37, 5, [13, 12, 12], [0, 1, 2], some, 400, 2);
    await checkSplit('bf16', 37, 5, [13, 12, 12], [2, 1], some, 401);
    await checkSplit('f32', 37, 3, [37], [0], some, 402);
  });
});

describe('validation', () => {
  it('rejects bad sizes and buffers too small for their shape, naming them', () => {
    const f16Table = input(ctx, packWeights('f16', new Float32Array(35)), 'table-35-f16'); // 72 bytes: 36 elements
    const ids = input(ctx, new Uint32Array(3), 'ids3');
    const out = poisonedF32(ctx, 3 * 7);
    try {
      const base = { table: f16Table, format: 'f16' as WeightFormat, ids, out, tokens: 3, vocab: 5, hidden: 7 };
      expect(() => prepareEmbedding(ctx, base)).not.toThrow();
      // The same bytes read as f32 are too few for 5×7.
      expect(() => prepareEmbedding(ctx, { ...base, format: 'f32' })).toThrow(/buffer table \("table-35-f16"\).*vocab×hidden f32 needs 140/);
      expect(() => prepareEmbedding(ctx, { ...base, vocab: 6 })).toThrow(GPUValidationError);
      expect(() => prepareEmbedding(ctx, { ...base, tokens: 4 })).toThrow(/buffer ids \("ids3"\)/);
      expect(() => prepareEmbedding(ctx, { ...base, hidden: 12, vocab: 2 })).toThrow(/buffer out/);
      expect(() => prepareEmbedding(ctx, { ...base, hidden: 0 })).toThrow(/hidden must be a positive integer/);
      expect(() => prepareEmbedding(ctx, { ...base, tokens: 1.5 })).toThrow(/tokens must be a positive integer/);
      expect(() => prepareEmbedding(ctx, { ...base, format: 'q4' as WeightFormat })).toThrow(/unknown weight format/);
      expect(() => prepareEmbedding(ctx, { ...base, scale: NaN })).toThrow(/scale must be a number/);
      expect(() => prepareEmbedding(ctx, { ...base, out: ids, tokens: 1, hidden: 3 })).toThrow(/separate buffer/);
      // Row ranges: 36 elements hold 5 rows of 7.
      expect(() => prepareEmbedding(ctx, { ...base, vocab: 9, firstRow: 4 })).not.toThrow();
      expect(() => prepareEmbedding(ctx, { ...base, vocab: 9, firstRow: 3 })).toThrow(/buffer table \("table-35-f16"\).*tableRows×hidden f16 \(6 rows\) needs 84/);
      expect(() => prepareEmbedding(ctx, { ...base, vocab: 9, firstRow: 1, tableRows: 5 })).not.toThrow();
      expect(() => prepareEmbedding(ctx, { ...base, vocab: 9, firstRow: 5, tableRows: 5 })).toThrow(/tableRows must be an integer in \[1, vocab − firstRow = 4\], got 5/);
      expect(() => prepareEmbedding(ctx, { ...base, tableRows: 0 })).toThrow(/tableRows must be/);
      expect(() => prepareEmbedding(ctx, { ...base, firstRow: 5 })).toThrow(/firstRow must be an integer in \[0, vocab = 5\), got 5/);
      expect(() => prepareEmbedding(ctx, { ...base, firstRow: -1 })).toThrow(/firstRow/);
      expect(() => prepareEmbedding(ctx, { ...base, firstRow: 0.5 })).toThrow(/firstRow/);
    } finally {
      f16Table.destroy();
      ids.destroy();
      out.destroy();
    }
  });
});
