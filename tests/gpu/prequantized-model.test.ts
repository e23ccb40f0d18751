// Pre-quantized AWQ and GPTQ checkpoints of the embedded model (tests/fixtures/prequantized, made by
// tools/make-prequantized from the published packing): loaded through the hub code, repacked on the GPU into q4,
// and run by the fused kernels; logits against a PyTorch float32 forward on the weights dequantized by the
// published unpacking code. Broken checkpoints and unsupported configs give typed errors. Chromium and Node + Dawn.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AutoModelForCausalLM, type ModelLoadOptions } from '../../src/api/auto-model.js';
import { ConfigError, SafetensorsError } from '../../src/errors.js';
import { forgetModelFiles, modelFromFiles } from '../../src/hub/local-files.js';
import type { CausalLM } from '../../src/runtime/causal-lm.js';
import { GPUContext } from '../../src/runtime/gpu-context.js';
import { asFiles, fetchCaseFiles, mapTensor, withConfig, withTensors } from '../helpers/checkpoint-files.js';
import { logitsClose } from '../helpers/goldens.js';

const server = inject('faultServer');
const CASES = [
  { name: 'awq-g64', group: 64 },
  { name: 'gptq-sym-g128', group: 128 },
  { name: 'gptq-asym-g32-v2', group: 32 },
];
const FILES = ['config.json', 'generation_config.json', 'model.safetensors'];

interface Reference {
  vocab_size: number;
  prompts: Array<{ input_ids: number[]; logits_offset: number }>;
  greedy: Array<{ input_ids: number[]; new_tokens: number[]; top2_margins: number[] }>;
}

let ctx: GPUContext;
beforeAll(async () => {
  ctx = await GPUContext.create();
});
afterAll(() => ctx?.dispose());

function load(id: string, options: ModelLoadOptions = {}): Promise<CausalLM> {
  return AutoModelForCausalLM.from_pretrained(id, { cache: null, context: ctx, ...options });
}

describe.each(CASES)('$name', ({ name, group }) => {
  const id = `${server}/prequantized/${name}`;

  it('logits at every prompt position equal the PyTorch forward on the dequantized weights; greedy tokens equal', async () => {
    const ref = (await (await fetch(`${id}/reference.json`)).json()) as Reference;
    const all = new Float32Array(await (await fetch(`${id}/reference-logits.bin`)).arrayBuffer());
    const before = ctx.memory.bytes;
    const model = await load(id);
    try {
      // Every Linear is q4 with the checkpoint's group; the embedding stays f16.
      for (const [key, slot] of model['parts'].weights.slots) {
        if (slot.spec.kind !== 'matrix') continue;
        if (key === 'embed') expect(slot.format, key).toBe('f16');
        else expect([slot.format, slot.group], key).toEqual(['q4', group]);
      }
      const V = ref.vocab_size;
      for (const p of ref.prompts) {
        const T = p.input_ids.length;
        const { logits } = await model({ input_ids: [p.input_ids] });
        for (let t = 0; t < T; t++) {
          const want = all.subarray(p.logits_offset + t * V, p.logits_offset + (t + 1) * V);
          const c = logitsClose(logits.row(0, t), want);
          expect(c.ok, `prompt ${p.input_ids.join(',')} position ${t}: worst ${c.worst} at ${c.at}`).toBe(true);
        }
      }
      for (const g of ref.greedy) {
        const out = (await model.generate({ input_ids: [g.input_ids], max_new_tokens: g.new_tokens.length, do_sample: false, repetition_penalty: 1 }))[0]!;
        // The smallest reference margin is 0.07, far above our logit error (≲ 2e-4): every step must agree.
        expect(Math.min(...g.top2_margins)).toBeGreaterThan(0.01);
        expect(out.slice(g.input_ids.length)).toEqual(g.new_tokens);
      }
    } finally {
      model.dispose();
    }
    expect(ctx.memory.bytes).toBe(before);
  });

  it('splits the repacked weights across bindings when asked (max_binding_bytes) and gives the same logits', async () => {
    const ref = (await (await fetch(`${id}/reference.json`)).json()) as Reference;
    const whole = await load(id);
    // gate_up: 2·704 rows of 128 B of q4 (180 KB); 100 KB chunks are 781 rows, the gate/up boundary mid-chunk. (down_proj,
    // 88–96 KB with its fused residual, cannot be split.)
    const split = await load(id, { max_binding_bytes: 100_000 });
    try {
      const chunks = split['parts'].weights.get('layers.0.gate_up').chunks;
      expect(chunks.map((c) => c.rows)).toEqual([781, 627]);
      const p = ref.prompts[0]!;
      const a = (await whole({ input_ids: [p.input_ids] })).logits;
      const b = (await split({ input_ids: [p.input_ids] })).logits;
      expect([...b.data]).toEqual([...a.data]);
    } finally {
      whole.dispose();
      split.dispose();
    }
  });
});

describe('pre-quantized: options and broken checkpoints', () => {
  const ids: string[] = [];
  let awq: Map<string, Uint8Array>;
  let gptq: Map<string, Uint8Array>;
  const register = (files: Map<string, Uint8Array>, name: string) => {
    const id = modelFromFiles(asFiles(files, name), name);
    ids.push(id);
    return id;
  };
  beforeAll(async () => {
    awq = await fetchCaseFiles(`${server}/prequantized`, 'awq-g64', FILES);
    gptq = await fetchCaseFiles(`${server}/prequantized`, 'gptq-sym-g128', FILES);
  });
  afterAll(() => {
    for (const id of ids) forgetModelFiles(id);
  });

  async function expectLoadError(id: string, options: ModelLoadOptions, type: abstract new (...a: never[]) => Error, needles: Array<string | RegExp>) {
    const before = { bytes: ctx.memory.bytes, buffers: ctx.memory.buffers };
    const error = await load(id, options).then(
      (m) => {
        m.dispose();
        return null;
      },
      (e: unknown) => e,
    );
    expect(error, `loading ${id}`).toBeInstanceOf(type);
    for (const n of needles) expect((error as Error).message).toMatch(n);
    expect({ bytes: ctx.memory.bytes, buffers: ctx.memory.buffers }, 'GPU memory after the failed load').toEqual(before);
  }

  it('dtype other than auto/q4, or another group_size: ConfigError', async () => {
    const id = `${server}/prequantized/awq-g64`;
    await expectLoadError(id, { dtype: 'f16' }, ConfigError, [/pre-quantized \(AWQ 4-bit GEMM, group 64\)/, /'auto' or 'q4'/]);
    await expectLoadError(id, { dtype: 'q8' }, ConfigError, [/pre-quantized/]);
    await expectLoadError(id, { dtype: 'q4', group_size: 32 }, ConfigError, [/group size 64; group_size 32/]);
    const m = await load(id, { dtype: 'q4', group_size: 64 });
    m.dispose();
  });

  it('unsupported quantization_config variants: ConfigError naming the field', async () => {
    const cases: Array<[Map<string, Uint8Array>, (q: Record<string, unknown>) => void, RegExp]> = [
      [awq, (q) => (q.version = 'gemv'), /quantization_config\.version "gemv" is not supported/],
      [awq, (q) => (q.zero_point = false), /quantization_config\.zero_point false/],
      [awq, (q) => (q.bits = 3), /quantization_config\.bits 3 is not supported/],
      [gptq, (q) => (q.desc_act = true), /quantization_config\.desc_act true/],
      [gptq, (q) => (q.group_size = -1), /quantization_config\.group_size -1 .*one group per row/],
      [gptq, (q) => (q.checkpoint_format = 'marlin'), /quantization_config\.checkpoint_format "marlin"/],
      [gptq, (q) => (q.quant_method = 'bitsandbytes'), /quantization_config\.quant_method "bitsandbytes" is not supported/],
    ];
    for (const [files, edit, needle] of cases) {
      const id = register(withConfig(files, (c) => edit(c.quantization_config as Record<string, unknown>)), 'bad-qc');
      await expectLoadError(id, {}, ConfigError, [needle]);
    }
  });

  it('missing, misshapen or retyped pieces, act-order g_idx, v1 zero 15, a nonzero bias: SafetensorsError naming the tensor', async () => {
    const L = 'model.layers.2.mlp.down_proj';
    const cases: Array<[Map<string, Uint8Array>, Parameters<typeof withTensors>[1], RegExp[]]> = [
      [awq, (ts) => ts.filter((t) => t.name !== `${L}.qzeros`), [new RegExp(`no tensor "${L}.qzeros"`)]],
      [awq, (ts) => ts.filter((t) => !t.name.startsWith(`${L}.`)), [new RegExp(`no tensor "${L}.weight", nor its AWQ .* tensors "${L}.qweight"`)]],
      [awq, (ts) => mapTensor(ts, `${L}.scales`, (t) => ({ ...t, dtype: 'BF16' })), [new RegExp(`"${L}.scales" is BF16; AWQ scales must be F16`)]],
      [awq, (ts) => mapTensor(ts, `${L}.qweight`, (t) => ({ ...t, shape: [t.shape[1]!, t.shape[0]!] })), [new RegExp(`"${L}.qweight" has shape \\[32, 704\\].*\\[704, 32\\]`)]],
      [
        gptq,
        (ts) =>
          mapTensor(ts, `${L}.g_idx`, (t) => {
            const g = new Int32Array(t.bytes.slice().buffer);
            [g[0], g[700]] = [g[700]!, g[0]!];
            return { ...t, bytes: new Uint8Array(g.buffer) };
          }),
        [new RegExp(`"${L}.g_idx" puts input 0 in group 5`), /act-order/],
      ],
      [
        gptq,
        (ts) =>
          mapTensor(ts, `${L}.qzeros`, (t) => {
            const z = new Int32Array(t.bytes.slice().buffer);
            z[3] = 0x777f7777;
            return { ...t, bytes: new Uint8Array(z.buffer) };
          }),
        [new RegExp(`"${L}.qzeros" stores a zero point of 15`), /gptq_v2/],
      ],
      [
        gptq,
        (ts) => [...ts, { name: `${L}.bias`, dtype: 'F16', shape: [256], bytes: new Uint8Array(512).fill(1) }],
        [new RegExp(`unexpected tensor "${L}.bias".*no bias`)],
      ],
      [awq, (ts) => [...ts, { name: `${L}.g_idx`, dtype: 'I32', shape: [704], bytes: new Uint8Array(2816) }], [/AWQ checkpoints have no g_idx/]],
    ];
    for (const [files, edit, needles] of cases) {
      await expectLoadError(register(withTensors(files, edit), 'bad-piece'), {}, SafetensorsError, needles);
    }
  });

  it('a zero bias per Linear (older AutoGPTQ) is accepted and ignored', async () => {
    const withBias = withTensors(gptq, (ts) => [
      ...ts,
      ...ts.filter((t) => t.name.endsWith('.scales')).map((t) => ({ name: t.name.replace('.scales', '.bias'), dtype: 'F16' as const, shape: [t.shape[1]!], bytes: new Uint8Array(2 * t.shape[1]!) })),
    ]);
    const a = await load(register(withBias, 'zero-bias'));
    const b = await load(`${server}/prequantized/gptq-sym-g128`);
    try {
      const ids = [[1, 1133, 261, 2084]];
      expect([...(await a({ input_ids: ids })).logits.data]).toEqual([...(await b({ input_ids: ids })).logits.data]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});
