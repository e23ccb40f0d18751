import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { ropeInvFreq, type RopeConfig } from '../../src/kernels/rope-scaling.js';

/**
 * References derived from the formulas, in float64, along a different path than the implementation: frequencies
 * as exp(−(2i/d)·ln θ), llama3 bands decided on frequency rather than wavelength, yarn's ramp written in terms of
 * the pair's rotation count over the original context.
 */
const TAU = 2 * Math.PI;

function baseFreqs(theta: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => Math.exp(-((2 * i) / d) * Math.log(theta)));
}

/** Each f32 result must be the f32 rounding of the float64 reference (allowing 1 ulp for the different path). */
function expectF32(got: Float32Array, ref: number[]) {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const tol = Math.abs(ref[i]) * 2 ** -23;
    expect(Math.abs(got[i] - ref[i]), `element ${i}: got ${got[i]}, expected ${ref[i]}`).toBeLessThanOrEqual(tol);
  }
}

describe('ropeInvFreq', () => {
  it('default: θ^(−2i/d), head_dim from hidden_size / num_attention_heads when absent', () => {
    const p = ropeInvFreq({ rope_theta: 10000, hidden_size: 256, num_attention_heads: 4 });
    expect(p.headDim).toBe(64);
    expect(p.rotaryDim).toBe(64);
    expect(p.attentionScaling).toBe(1);
    expect(p.ropeType).toBe('default');
    expect(p.invFreq[0]).toBe(1);
    expectF32(p.invFreq, baseFreqs(10000, 64));
    // Explicit "default" and a null rope_scaling behave the same; rope_theta defaults to 10000.
    expectF32(ropeInvFreq({ head_dim: 64, rope_scaling: { rope_type: 'default' } }).invFreq, baseFreqs(10000, 64));
    expectF32(ropeInvFreq({ head_dim: 64, rope_scaling: null }).invFreq, baseFreqs(10000, 64));
  });

  it('partial_rotary_factor: rotaryDim = int(head_dim · factor), frequencies over that dim', () => {
    const p = ropeInvFreq({ rope_theta: 10000, head_dim: 96, partial_rotary_factor: 1 / 3 });
    expect(p.rotaryDim).toBe(32);
    expectF32(p.invFreq, baseFreqs(10000, 32));
    const q = ropeInvFreq({ rope_theta: 1e6, head_dim: 80, partial_rotary_factor: 0.5 });
    expect(q.rotaryDim).toBe(40);
    expectF32(q.invFreq, baseFreqs(1e6, 40));
  });

  it('linear: every frequency divided by factor (old "type" key accepted)', () => {
    const p = ropeInvFreq({ rope_theta: 10000, head_dim: 32, rope_scaling: { type: 'linear', factor: 4 } });
    expect(p.ropeType).toBe('linear');
    expectF32(
      p.invFreq,
      baseFreqs(10000, 32).map((f) => f * 0.25),
    );
  });

  it('dynamic NTK: base unchanged up to max_position_embeddings, rescaled for longer sequences', () => {
    const config: RopeConfig = {
      rope_theta: 10000,
      head_dim: 64,
      max_position_embeddings: 2048,
      rope_scaling: { rope_type: 'dynamic', factor: 2 },
    };
    expectF32(ropeInvFreq(config).invFreq, baseFreqs(10000, 64));
    expectF32(ropeInvFreq(config, { seqLen: 100 }).invFreq, baseFreqs(10000, 64));
    expectF32(ropeInvFreq(config, { seqLen: 2048 }).invFreq, baseFreqs(10000, 64));
    // NTK-aware: θ' = θ · (s·L/L₀ − (s − 1))^(d/(d−2)); at L = 4096, s = 2: (4 − 1)^(64/62).
    const theta = 10000 * Math.exp((64 / 62) * Math.log(3));
    const p = ropeInvFreq(config, { seqLen: 4096 });
    expectF32(p.invFreq, baseFreqs(theta, 64));
    expect(p.invFreq[0]).toBe(1); // the fastest pair never changes
    expect(p.invFreq[31]).toBeLessThan(ropeInvFreq(config).invFreq[31]);
    expect(() => ropeInvFreq(config, { seqLen: 0 })).toThrow(/seqLen/);
    expect(() => ropeInvFreq({ ...config, max_position_embeddings: undefined })).toThrow(/max_position_embeddings/);
  });

  it('llama3: the fixture config has high, medium and low frequency bands, each scaled as the formula says', () => {
    const config = JSON.parse(
      readFileSync(new URL('../fixtures/hf-tiny/llama3-rope/config.json', import.meta.url), 'utf8'),
    ) as RopeConfig;
    const p = ropeInvFreq(config);
    expect(p.ropeType).toBe('llama3');
    expect(p.rotaryDim).toBe(32);
    const s = config.rope_scaling as Record<string, number>;
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: L } = s;
    const base = baseFreqs(config.rope_theta as number, 32);
    const bands = { high: 0, medium: 0, low: 0 };
    const ref = base.map((f) => {
      // Rotations over the original context: L·f/2π. Above hi: kept; below lo: divided by factor; between: blended.
      const rotations = (L * f) / TAU;
      if (rotations > hi) {
        bands.high++;
        return f;
      }
      if (rotations < lo) {
        bands.low++;
        return f / factor;
      }
      bands.medium++;
      const t = (rotations - lo) / (hi - lo);
      return f * (t + (1 - t) / factor);
    });
    expect(bands.high).toBeGreaterThan(0);
    expect(bands.medium).toBeGreaterThan(0);
    expect(bands.low).toBeGreaterThan(0);
    expectF32(p.invFreq, ref);
    // Spot-check each band against the unscaled frequencies.
    const plain = ropeInvFreq({ ...config, rope_scaling: null }).invFreq;
    expect(p.invFreq[0]).toBe(plain[0]);
    expectF32(p.invFreq.subarray(15), [base[15] / factor]);
    const mid = ref.findIndex(
      (_, i) => p.invFreq[i] !== plain[i] && Math.abs(p.invFreq[i] / (plain[i] / factor) - 1) > 1e-6,
    );
    expect(mid).toBeGreaterThan(0);
    expect(p.invFreq[mid]).toBeLessThan(plain[mid]);
    expect(p.invFreq[mid]).toBeGreaterThan(plain[mid] / factor);
  });

  describe('yarn', () => {
    /** YaRN from the paper's definitions: ramp over pair index between the β_fast and β_slow correction dims. */
    function yarnRef(theta: number, d: number, s: number, L0: number, betaFast = 32, betaSlow = 1) {
      // The pair whose frequency makes β rotations over L0 sits at dim index d·ln(L0/(2πβ)) / (2 ln θ).
      const at = (beta: number) => (d * Math.log(L0 / (TAU * beta))) / (2 * Math.log(theta));
      const lo = Math.max(Math.floor(at(betaFast)), 0);
      let hiDim = Math.min(Math.ceil(at(betaSlow)), d - 1);
      if (hiDim === lo) hiDim += 0.001;
      return baseFreqs(theta, d).map((f, i) => {
        const gamma = Math.min(Math.max((i - lo) / (hiDim - lo), 0), 1); // 0: extrapolate, 1: interpolate
        return f * (1 - gamma) + (f / s) * gamma;
      });
    }

    it('factor only: ramp between correction dims, attentionScaling = 0.1·ln(s) + 1', () => {
      const p = ropeInvFreq({
        rope_theta: 10000,
        head_dim: 64,
        max_position_embeddings: 4096,
        rope_scaling: { rope_type: 'yarn', factor: 4 },
      });
      expect(p.attentionScaling).toBeCloseTo(0.1 * Math.log(4) + 1, 14);
      const ref = yarnRef(10000, 64, 4, 4096);
      expectF32(p.invFreq, ref);
      // Both ends present: fast pairs untouched, slow pairs fully interpolated.
      const plain = baseFreqs(10000, 64);
      expect(p.invFreq[0]).toBe(1);
      expectF32(p.invFreq.subarray(31), [plain[31] / 4]);
    });

    it('original_max_position_embeddings sets the factor to max/original; beta_fast/beta_slow honoured', () => {
      const p = ropeInvFreq({
        rope_theta: 1e6,
        head_dim: 128,
        max_position_embeddings: 32768,
        rope_scaling: {
          rope_type: 'yarn',
          factor: 99, // overridden by 32768 / 8192 = 4
          original_max_position_embeddings: 8192,
          beta_fast: 16,
          beta_slow: 2,
        },
      });
      expect(p.attentionScaling).toBeCloseTo(0.1 * Math.log(4) + 1, 14);
      expectF32(p.invFreq, yarnRef(1e6, 128, 4, 8192, 16, 2));
    });

    it('mscale / mscale_all_dim and explicit attention_factor', () => {
      const config: RopeConfig = {
        rope_theta: 10000,
        head_dim: 64,
        max_position_embeddings: 4096,
        rope_scaling: { rope_type: 'yarn', factor: 40, mscale: 1, mscale_all_dim: 0.5 },
      };
      const m = (scale: number, k: number) => 0.1 * k * Math.log(scale) + 1;
      expect(ropeInvFreq(config).attentionScaling).toBeCloseTo(m(40, 1) / m(40, 0.5), 14);
      const explicit = ropeInvFreq({
        ...config,
        rope_scaling: { rope_type: 'yarn', factor: 40, attention_factor: 0.75 },
      });
      expect(explicit.attentionScaling).toBe(0.75);
      expectF32(explicit.invFreq, yarnRef(10000, 64, 40, 4096));
    });
  });

  it('rejects unknown types and malformed fields with ConfigError naming the field', () => {
    const base: RopeConfig = { rope_theta: 10000, head_dim: 64, max_position_embeddings: 2048 };
    const bad: [RopeConfig, RegExp][] = [
      [{ ...base, rope_scaling: { rope_type: 'longrope', factor: 2 } }, /rope_scaling\.rope_type/],
      [{ ...base, rope_scaling: { type: 'su' } }, /rope_scaling\.type/],
      [{ ...base, rope_scaling: { rope_type: 'linear' } }, /rope_scaling\.factor/],
      [{ ...base, rope_scaling: { rope_type: 'linear', factor: 0.5 } }, /rope_scaling\.factor/],
      [{ ...base, rope_scaling: { rope_type: 'dynamic', factor: '2' } }, /rope_scaling\.factor/],
      [
        { ...base, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } },
        /rope_scaling\.original_max_position_embeddings/,
      ],
      [
        {
          ...base,
          rope_scaling: {
            rope_type: 'llama3',
            factor: 8,
            low_freq_factor: 4,
            high_freq_factor: 4,
            original_max_position_embeddings: 8192,
          },
        },
        /rope_scaling\.high_freq_factor/,
      ],
      [
        { ...base, rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4, original_max_position_embeddings: 8 } },
        /rope_scaling\.low_freq_factor/,
      ],
      [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 4, beta_fast: 'x' } }, /rope_scaling\.beta_fast/],
      [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 4, attention_factor: -1 } }, /rope_scaling\.attention_factor/],
      [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 4, truncate: 'no' } }, /rope_scaling\.truncate/],
      [{ ...base, rope_scaling: { rope_type: 'yarn', factor: 4, mscale: null, mscale_all_dim: 'a' } }, /mscale_all_dim/],
      [{ ...base, rope_theta: -5 }, /rope_theta/],
      [{ ...base, head_dim: 63.5 }, /head_dim/],
      [{ rope_theta: 10000, hidden_size: 100, num_attention_heads: 3 }, /hidden_size/],
      [{ rope_theta: 10000, num_attention_heads: 3 }, /hidden_size/],
      [{ ...base, partial_rotary_factor: 0.01 }, /partial_rotary_factor/],
      [{ ...base, head_dim: 50, partial_rotary_factor: 0.5 }, /partial_rotary_factor/],
      [{ ...base, partial_rotary_factor: 2 }, /partial_rotary_factor/],
      [{ ...base, rope_scaling: 'linear' as unknown as Record<string, unknown> }, /rope_scaling/],
    ];
    for (const [config, field] of bad) {
      expect(() => ropeInvFreq(config), JSON.stringify(config)).toThrow(ConfigError);
      expect(() => ropeInvFreq(config), JSON.stringify(config)).toThrow(field);
    }
  });
});
