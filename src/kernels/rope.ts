/**
 * Rotary position embeddings, Hugging Face `rotate_half` layout, applied in place to q and k.
 *
 *   q: (T, Hq, D) f32, row-major        rewritten in place
 *   k: (T, Hk, D) f32, row-major        rewritten in place (Hk ≤ Hq allowed: grouped-query attention)
 *   positions: (T) u32                  position id of each token (any order, any values)
 *   invFreq: (R/2) f32                  from `ropeInvFreq` (rope-scaling.ts); R = rotaryDim ≤ D, even
 *
 * For each token t, head h and pair i < R/2, with half = R/2:
 *   freqs = torch.outer(position_ids.float(), inv_freq)  → angle = f32(pos) · invFreq[i], one f32 product
 *   emb = torch.cat((freqs, freqs), dim=-1); cos = emb.cos() * attention_scaling; sin = emb.sin() * attention_scaling
 *   q_embed = (q * cos) + (rotate_half(q) * sin), rotate_half(x) = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
 * so x[i] ← x[i]·cos − x[i+half]·sin and x[i+half] ← x[i+half]·cos + x[i]·sin. Dims R … D−1 (partial rotary,
 * `q_pass`) are not touched. One thread per (token, head, pair); the pair is read and written by that thread only,
 * so in-place is race-free.
 *
 * cos/sin: WGSL's builtin sin/cos only promise 2⁻¹¹ absolute error, and only on [−π, π], while angles here reach
 * thousands of radians. So the shader reduces the f32 angle by π/2 with a four-part (Cody–Waite) constant, each
 * k·Ci exact for |k| < 2¹⁶ (angles up to ~10⁵ rad; beyond that accuracy degrades gradually), then evaluates
 * minimax polynomials on [−π/4, π/4]: the result is within a few f32 ulps of the exact cos/sin of the f32 angle,
 * on every backend.
 *
 * Bindings (group 0): 0 q (storage, read_write) · 1 k (storage, read_write) · 2 positions (storage, read) ·
 * 3 invFreq (storage, read) · 4 params (uniform).
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, type KernelDispatch } from './dispatch.js';

const WORKGROUP = 64;

export const ROPE_F32_KEY = 'rope.f32.rotate_half';

export function ropeF32Source(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32,
  qHeads: u32,
  kHeads: u32,
  headDim: u32,
  half: u32,            // rotaryDim / 2
  rowStride: u32,       // threads per grid row (workgroups.x · 64)
  scale: f32,           // attention_scaling
  _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;     // (T, Hq, D)
@group(0) @binding(1) var<storage, read_write> k: array<f32>;     // (T, Hk, D)
@group(0) @binding(2) var<storage, read> positions: array<u32>;   // (T)
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;    // (R/2)
@group(0) @binding(4) var<uniform> params: Params;

// pi/2 = C1 + C2 + C3 + C4: C1..C3 hold 8 significant bits each, so k * Ci is exact for |k| < 2^16.
const C1 = 1.5703125;
const C2 = 4.825592041015625e-4;
const C3 = 1.2665987014770508e-6;
const C4 = 9.920935796805404e-10;
const TWO_OVER_PI = 0.636619772367581343;

// (cos, sin) of an f32 angle, accurate to a few ulps for |a| up to ~1e5.
fn cos_sin(a: f32) -> vec2f {
  let kf = round(a * TWO_OVER_PI);
  var r = a - kf * C1;
  r = r - kf * C2;
  r = r - kf * C3;
  r = r - kf * C4;
  let z = r * r;
  // minimax polynomials on [-pi/4, pi/4]
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  let quadrant = ((i32(kf) % 4) + 4) % 4;
  switch quadrant {
    case 0: { return vec2f(c, s); }
    case 1: { return vec2f(-s, c); }
    case 2: { return vec2f(-c, -s); }
    default: { return vec2f(s, -c); }
  }
}

@compute @workgroup_size(${WORKGROUP}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let half = params.half;
  let heads = params.qHeads + params.kHeads;
  let idx = gid.y * params.rowStride + gid.x;
  if (idx >= params.tokens * heads * half) { return; }
  let i = idx % half;
  let th = idx / half;          // token * heads + head
  let h = th % heads;
  let t = th / heads;

  // freqs = position_ids.float() @ inv_freq: a single f32 product, as in PyTorch.
  let angle = f32(positions[t]) * inv_freq[i];
  let cs = cos_sin(angle) * params.scale;

  let D = params.headDim;
  if (h < params.qHeads) {
    let base = (t * params.qHeads + h) * D;
    let x1 = q[base + i];
    let x2 = q[base + i + half];
    q[base + i] = x1 * cs.x - x2 * cs.y;
    q[base + i + half] = x2 * cs.x + x1 * cs.y;
  } else {
    let base = (t * params.kHeads + (h - params.qHeads)) * D;
    let x1 = k[base + i];
    let x2 = k[base + i + half];
    k[base + i] = x1 * cs.x - x2 * cs.y;
    k[base + i + half] = x2 * cs.x + x1 * cs.y;
  }
}
`;
}

export interface RopeArgs {
  /** (tokens, qHeads, headDim) f32, rotated in place. */
  q: GPUBuffer;
  /** (tokens, kHeads, headDim) f32, rotated in place. */
  k: GPUBuffer;
  /** (tokens) u32 position ids. */
  positions: GPUBuffer;
  /** (rotaryDim / 2) f32 inverse frequencies (`ropeInvFreq(config).invFreq`). */
  invFreq: GPUBuffer;
  tokens: number;
  qHeads: number;
  kHeads: number;
  headDim: number;
  /** Leading dims rotated; even, ≤ headDim. Defaults to headDim. */
  rotaryDim?: number;
  /** Multiplies cos and sin (`ropeInvFreq(config).attentionScaling`). Defaults to 1. */
  attentionScaling?: number;
  label?: string;
}

/** Prepares rotary embedding of q and k in place; record it with `recordDispatches`. Owns a small uniform buffer. */
export function prepareRopeF32(ctx: GPUContext, args: RopeArgs): KernelDispatch {
  const { tokens, qHeads, kHeads, headDim } = args;
  const rotaryDim = args.rotaryDim ?? headDim;
  const scale = args.attentionScaling ?? 1;
  const label = args.label ?? `rope ${tokens}×(${qHeads}+${kHeads})×${headDim} r${rotaryDim}`;
  const ints = [
    ['tokens', tokens],
    ['qHeads', qHeads],
    ['kHeads', kHeads],
    ['headDim', headDim],
    ['rotaryDim', rotaryDim],
  ] as const;
  for (const [name, v] of ints) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) {
      throw new GPUValidationError(`rope "${label}": ${name} must be a positive integer, got ${v}.`);
    }
  }
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw new GPUValidationError(
      `rope "${label}": rotaryDim must be even and ≤ headDim (${headDim}), got ${rotaryDim}.`,
    );
  }
  if (!Number.isFinite(scale)) {
    throw new GPUValidationError(`rope "${label}": attentionScaling must be a finite number, got ${scale}.`);
  }
  const half = rotaryDim / 2;
  const threads = tokens * (qHeads + kHeads) * half;
  if (threads > 0xffffffff) {
    throw new GPUValidationError(`rope "${label}": ${threads} rotations exceed the u32 index range.`);
  }
  const bindings = [
    { name: 'q', buffer: args.q, bytes: tokens * qHeads * headDim * 4, shape: 'tokens×qHeads×headDim f32' },
    { name: 'k', buffer: args.k, bytes: tokens * kHeads * headDim * 4, shape: 'tokens×kHeads×headDim f32' },
    { name: 'positions', buffer: args.positions, bytes: tokens * 4, shape: 'tokens u32' },
    { name: 'invFreq', buffer: args.invFreq, bytes: half * 4, shape: 'rotaryDim/2 f32' },
  ];
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of bindings) {
    if (b.buffer.size < b.bytes) {
      throw new GPUValidationError(
        `rope "${label}": buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} needs ${b.bytes}.`,
      );
    }
    if (b.bytes > maxBinding) {
      throw new GPUValidationError(
        `rope "${label}": ${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`,
      );
    }
  }
  if (args.q === args.k) {
    throw new GPUValidationError(`rope "${label}": q and k must be different buffers.`);
  }

  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  const groups = Math.ceil(threads / WORKGROUP);
  const gx = Math.min(groups, maxGroups);
  const gy = Math.ceil(groups / gx);
  if (gy > maxGroups) {
    throw new GPUValidationError(
      `rope "${label}": ${threads} rotations need ${gx}×${gy} workgroups, above this GPU's limit of ${maxGroups} per dimension.`,
    );
  }
  const workgroups: [number, number, number] = [gx, gy, 1];

  const pipeline = ctx.pipelines.get(ROPE_F32_KEY, ropeF32Source);
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 6).set([tokens, qHeads, kHeads, headDim, half, gx * WORKGROUP]);
  new Float32Array(data, 24, 1)[0] = scale;
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, new Uint8Array(data));
  return { kernel: ROPE_F32_KEY, label, pipeline, bindGroup, workgroups, owned: [uniform] };
}
