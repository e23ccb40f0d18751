/**
 * Causal self-attention over a key/value cache, grouped-query heads, f32 throughout.
 *
 *   q: (T, Hq, D) f32         queries of the tokens at positions base..base+T−1
 *   kCache, vCache: (maxSeq, Hkv, D) f32, row-major by position
 *   out: (T, Hq, D) f32
 *
 * Query head h reads kv head h / (Hq / Hkv) (repeat_kv). Eager attention in PyTorch:
 *   attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
 *   attn_weights = attn_weights + causal_mask
 *   attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32)
 *   attn_output = torch.matmul(attn_weights, value_states)
 * with optional soft-capping before the mask (Gemma 2):
 *   attn_weights = attn_weights / softcap; attn_weights = torch.tanh(attn_weights); attn_weights = attn_weights * softcap
 *
 * Visible keys for the query at position p = base + t: maskStart ≤ j ≤ p, and j > p − window when a window is
 * set. A query that sees no key at all (p < maskStart, a left-padding row) gets an output of zeros.
 *
 * Flash-style: one 64-thread workgroup per (query, head). Keys are taken in blocks of 64, one key per thread for
 * the score; the block max and sum are reduced in workgroup memory and the running max m, sum l and the output
 * accumulator are rescaled by exp(m_old − m_new) (online softmax), so no T×S matrix is ever stored. Each thread
 * owns output dims d = tid, tid + 64, … (D ≤ 256). The same kernel serves prefill (T > 1) and decode (T = 1);
 * decode does not split the sequence across workgroups (one workgroup per head walks all keys).
 *
 * `prepareKvWrite` copies new K and V rows (tokens, Hkv, D) into the caches at positions start..start+tokens−1.
 *
 * Attention bindings (group 0): 0 q (storage, read) · 1 kCache (storage, read) · 2 vCache (storage, read) ·
 * 3 out (storage, read_write) · 4 params (uniform).
 * KV write bindings (group 0): 0 k (storage, read) · 1 v (storage, read) · 2 kCache (storage, read_write) ·
 * 3 vCache (storage, read_write) · 4 params (uniform).
 */
import { GPUValidationError } from '../errors.js';
import { createBuffer, UNIFORM, COPY_DST, STORAGE, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import type { KernelDispatch } from './dispatch.js';

const WG = 64;
/** Largest head dim the attention kernel accepts. */
export const ATTENTION_MAX_HEAD_DIM = 256;
const PER_THREAD = ATTENTION_MAX_HEAD_DIM / WG;

export const ATTENTION_KEY = `attention.causal.online.f32.wg${WG}`;
export const KV_WRITE_KEY = 'attention.kv-write.f32.wg256';

export function attentionSource(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;             // (T, Hq, D)
@group(0) @binding(1) var<storage, read> k_cache: array<f32>;       // (maxSeq, Hkv, D)
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;       // (maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;     // (T, Hq, D)
@group(0) @binding(4) var<uniform> params: Params;

const WG = ${WG}u;
const PER = ${PER_THREAD}u;

var<workgroup> qs: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> ps: array<f32, ${WG}>;   // scores, then probabilities, of the current key block
var<workgroup> red: array<f32, ${WG}>;

fn reduce_max(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) { red[t] = red[t] + red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let tok = wg.x;
  let h = wg.y;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let hkv = params.hkv;
  // repeat_kv: query head h reads kv head h / n_rep.
  let kvh = h / (params.hq / hkv);
  let qoff = (tok * params.hq + h) * D;
  for (var d = t; d < D; d += WG) { qs[d] = q[qoff + d]; }
  workgroupBarrier();

  let p = params.base + tok;
  let k_end = p + 1u;                          // causal: keys j ≤ p
  var k_start = params.mask_start;             // left padding: keys before mask_start are invisible
  if (params.window > 0u && p + 1u > params.window) {
    k_start = max(k_start, p + 1u - params.window);   // sliding window: j > p − window
  }

  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var k0 = k_start; k0 < k_end; k0 += WG) {
    let j = k0 + t;
    let valid = j < k_end;
    var s = -3.0e38;
    if (valid) {
      // attn_weights = q @ kᵀ * scaling
      let koff = (j * hkv + kvh) * D;
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot = fma(qs[d], k_cache[koff + d], dot); }
      s = dot * params.scaling;
      if (params.cap_on != 0u) {
        // tanh(s / cap) * cap; clamped so tanh never sees an argument it could overflow on
        s = tanh(clamp(s / params.cap, -20.0, 20.0)) * params.cap;
      }
    }
    let m_new = max(m, reduce_max(s, t));
    var pj = 0.0;
    if (valid) { pj = exp(s - m_new); }
    ps[t] = pj;
    let alpha = exp(m - m_new);
    l = l * alpha + reduce_sum(pj, t);   // the barriers in reduce_sum also publish ps
    m = m_new;
    let n = min(WG, k_end - k0);
    for (var i = 0u; i < PER; i++) {
      let d = t + i * WG;
      if (d < D) {
        // attn_output = attn_weights @ v, rescaled as the running max moves
        var a = acc[i] * alpha;
        for (var c = 0u; c < n; c++) {
          a = fma(ps[c], v_cache[((k0 + c) * hkv + kvh) * D + d], a);
        }
        acc[i] = a;
      }
    }
    workgroupBarrier();   // ps is read by all before the next block overwrites it
  }

  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  for (var i = 0u; i < PER; i++) {
    let d = t + i * WG;
    if (d < D) { out[qoff + d] = acc[i] * inv; }
  }
}
`;
}

export function kvWriteSource(): string {
  return /* wgsl */ `
struct Params { tokens: u32, row: u32, start: u32, _pad: u32 }

@group(0) @binding(0) var<storage, read> k: array<f32>;              // (tokens, Hkv, D)
@group(0) @binding(1) var<storage, read> v: array<f32>;              // (tokens, Hkv, D)
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;  // (maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;  // (maxSeq, Hkv, D)
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= params.tokens * params.row) { return; }
  // key_states = torch.cat([past_key, key_states], dim=-2), written in place at positions start..
  let dst = params.start * params.row + i;
  k_cache[dst] = k[i];
  v_cache[dst] = v[i];
}
`;
}

interface BufferCheck {
  name: string;
  buffer: GPUBuffer;
  bytes: number;
  shape: string;
}

function checkBuffers(ctx: GPUContext, list: BufferCheck[], fail: (m: string) => never): void {
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of list) {
    if (b.buffer.size < b.bytes) {
      fail(`buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} f32 needs ${b.bytes}.`);
    }
    if (b.bytes > maxBinding) {
      fail(`${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`);
    }
  }
}

function positiveInt(name: string, v: number, fail: (m: string) => never): void {
  if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got ${v}.`);
}

export interface KvWriteArgs {
  /** (tokens, Hkv, D) f32 new keys. */
  k: GPUBuffer;
  /** (tokens, Hkv, D) f32 new values. */
  v: GPUBuffer;
  /** (maxSeq, Hkv, D) f32 key cache. */
  kCache: GPUBuffer;
  /** (maxSeq, Hkv, D) f32 value cache. */
  vCache: GPUBuffer;
  /** Most tokens one write copies (the rows of k and v). */
  tokens: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  /** First cache position written (default 0); change it per step with `setStep`. */
  start?: number;
  label?: string;
}

export interface KvWriteDispatch extends KernelDispatch {
  readonly maxTokens: number;
  readonly maxSeq: number;
  /**
   * Aims later submissions at cache positions start..start+tokens−1 (tokens 1..maxTokens, start + tokens ≤ maxSeq).
   * Goes through `queue.writeBuffer`: it applies to command buffers submitted after the call.
   */
  setStep(start: number, tokens?: number): void;
}

/** Prepares the copy of new K and V rows into the caches; record it with `recordDispatches`. */
export function prepareKvWrite(ctx: GPUContext, args: KvWriteArgs): KvWriteDispatch {
  const { tokens, kvHeads, headDim, maxSeq } = args;
  const start = args.start ?? 0;
  const label = args.label ?? `kv-write ${tokens}x${kvHeads}x${headDim}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`kv-write "${label}": ${message}`);
  };
  positiveInt('tokens', tokens, fail);
  positiveInt('kvHeads', kvHeads, fail);
  positiveInt('headDim', headDim, fail);
  positiveInt('maxSeq', maxSeq, fail);
  if (tokens > maxSeq) fail(`tokens (${tokens}) is above maxSeq (${maxSeq}).`);
  if (!Number.isInteger(start) || start < 0 || start + tokens > maxSeq) {
    fail(`start must be an integer with start + tokens ≤ maxSeq (${maxSeq}), got ${start}.`);
  }
  const row = kvHeads * headDim;
  if (maxSeq * row > 0xffffffff) fail(`maxSeq·kvHeads·headDim (${maxSeq * row}) does not fit a u32 index.`);
  const groups = Math.ceil((tokens * row) / 256);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (groups > maxGroups) fail(`tokens·kvHeads·headDim needs ${groups} workgroups, above this GPU's limit of ${maxGroups}.`);
  const newBytes = tokens * row * 4;
  const cacheBytes = maxSeq * row * 4;
  checkBuffers(
    ctx,
    [
      { name: 'k', buffer: args.k, bytes: newBytes, shape: 'tokens×kvHeads×headDim' },
      { name: 'v', buffer: args.v, bytes: newBytes, shape: 'tokens×kvHeads×headDim' },
      { name: 'kCache', buffer: args.kCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
      { name: 'vCache', buffer: args.vCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
    ],
    fail,
  );
  if (args.kCache === args.vCache) fail('kCache and vCache must be different buffers.');
  for (const c of [args.kCache, args.vCache]) {
    if (c === args.k || c === args.v) fail('the caches must not be the same buffers as k or v.');
  }

  const pipeline = ctx.pipelines.get(KV_WRITE_KEY, kvWriteSource);
  const params = createBuffer(ctx, `${label}/params`, 16, UNIFORM | COPY_DST);
  writeBuffer(ctx, params, new Uint32Array([tokens, row, start, 0]));
  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: args.k, offset: 0, size: newBytes } },
      { binding: 1, resource: { buffer: args.v, offset: 0, size: newBytes } },
      { binding: 2, resource: { buffer: args.kCache, offset: 0, size: cacheBytes } },
      { binding: 3, resource: { buffer: args.vCache, offset: 0, size: cacheBytes } },
      { binding: 4, resource: { buffer: params } },
    ],
  });
  const setStep = (s: number, n = tokens): void => {
    if (!Number.isInteger(n) || n < 1 || n > tokens) fail(`setStep: tokens must be an integer in 1..${tokens}, got ${n}.`);
    if (!Number.isInteger(s) || s < 0 || s + n > maxSeq) {
      fail(`setStep: start must be an integer with start + tokens ≤ maxSeq (${maxSeq}), got ${s} + ${n}.`);
    }
    writeBuffer(ctx, params, new Uint32Array([n, row, s]));
  };
  return {
    kernel: KV_WRITE_KEY,
    label,
    pipeline,
    bindGroup,
    workgroups: [groups, 1, 1],
    owned: [params],
    maxTokens: tokens,
    maxSeq,
    setStep,
  };
}

export interface AttentionArgs {
  /** (tokens, Hq, D) f32 queries. */
  q: GPUBuffer;
  /** (maxSeq, Hkv, D) f32 key cache, holding positions 0..base+tokens−1. */
  kCache: GPUBuffer;
  /** (maxSeq, Hkv, D) f32 value cache. */
  vCache: GPUBuffer;
  /** (tokens, Hq, D) f32 output; only its first tokens·Hq·D elements are written. */
  out: GPUBuffer;
  /** Most queries one dispatch handles (rows of q and out). */
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  /** Multiplies q·k (usually 1/sqrt(headDim)). */
  scaling: number;
  /** Position of the first query (default 0); change it per step with `setStep`. */
  base?: number;
  /** Keys before this position are invisible (left padding); default 0. */
  maskStart?: number;
  /** Sliding window: the query at p sees keys j > p − window. Omitted or 0: no window. */
  window?: number;
  /** Soft-capping of the scores, tanh(s / cap) * cap, before the mask. Omitted or 0: none. */
  softCap?: number;
  label?: string;
}

export interface AttentionDispatch extends KernelDispatch {
  readonly maxTokens: number;
  readonly maxSeq: number;
  /**
   * Aims later submissions at queries base..base+tokens−1 (tokens 1..maxTokens, base + tokens ≤ maxSeq). Goes
   * through `queue.writeBuffer`: it applies to command buffers submitted after the call.
   */
  setStep(base: number, tokens?: number): void;
  /** Sets the first visible key position (left padding) for later submissions. */
  setMaskStart(maskStart: number): void;
}

/** Prepares causal attention of q over the caches; record it with `recordDispatches`. */
export function prepareAttention(ctx: GPUContext, args: AttentionArgs): AttentionDispatch {
  const { tokens, heads, kvHeads, headDim, maxSeq, scaling } = args;
  const base = args.base ?? 0;
  const maskStart = args.maskStart ?? 0;
  const window = args.window ?? 0;
  const softCap = args.softCap ?? 0;
  const label = args.label ?? `attention ${tokens}x${heads}/${kvHeads}x${headDim}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`attention "${label}": ${message}`);
  };
  positiveInt('tokens', tokens, fail);
  positiveInt('heads', heads, fail);
  positiveInt('kvHeads', kvHeads, fail);
  positiveInt('maxSeq', maxSeq, fail);
  if (heads % kvHeads !== 0) fail(`heads (${heads}) must be a multiple of kvHeads (${kvHeads}).`);
  if (!Number.isInteger(headDim) || headDim < 1 || headDim > ATTENTION_MAX_HEAD_DIM) {
    fail(`headDim must be an integer in 1..${ATTENTION_MAX_HEAD_DIM}, got ${headDim}.`);
  }
  if (tokens > maxSeq) fail(`tokens (${tokens}) is above maxSeq (${maxSeq}).`);
  if (!Number.isFinite(scaling) || scaling <= 0) fail(`scaling must be a finite number > 0, got ${scaling}.`);
  if (!Number.isInteger(base) || base < 0 || base + tokens > maxSeq) {
    fail(`base must be an integer with base + tokens ≤ maxSeq (${maxSeq}), got ${base}.`);
  }
  if (!Number.isInteger(maskStart) || maskStart < 0 || maskStart > 0xffffffff) {
    fail(`maskStart must be a non-negative integer, got ${maskStart}.`);
  }
  if (!Number.isInteger(window) || window < 0 || window > 0xffffffff) {
    fail(`window must be a non-negative integer (0: none), got ${window}.`);
  }
  if (!Number.isFinite(softCap) || softCap < 0) fail(`softCap must be a finite number ≥ 0 (0: none), got ${softCap}.`);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (tokens > maxGroups) fail(`tokens (${tokens}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (heads > maxGroups) fail(`heads (${heads}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (maxSeq * kvHeads * headDim > 0xffffffff) fail('maxSeq·kvHeads·headDim does not fit a u32 index.');
  if (tokens * heads * headDim > 0xffffffff) fail('tokens·heads·headDim does not fit a u32 index.');

  const qBytes = tokens * heads * headDim * 4;
  const cacheBytes = maxSeq * kvHeads * headDim * 4;
  checkBuffers(
    ctx,
    [
      { name: 'q', buffer: args.q, bytes: qBytes, shape: 'tokens×heads×headDim' },
      { name: 'kCache', buffer: args.kCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
      { name: 'vCache', buffer: args.vCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
      { name: 'out', buffer: args.out, bytes: qBytes, shape: 'tokens×heads×headDim' },
    ],
    fail,
  );
  if (args.out === args.q || args.out === args.kCache || args.out === args.vCache) {
    fail('out must be a buffer of its own, not q or a cache.');
  }

  const pipeline = ctx.pipelines.get(ATTENTION_KEY, attentionSource);
  const params = createBuffer(ctx, `${label}/params`, 48, UNIFORM | COPY_DST);
  const words = new ArrayBuffer(48);
  const u32 = new Uint32Array(words);
  const f32 = new Float32Array(words);
  u32.set([tokens, heads, kvHeads, headDim, base, maskStart, window, softCap > 0 ? 1 : 0]);
  f32[8] = scaling;
  f32[9] = softCap;
  writeBuffer(ctx, params, u32);

  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: args.q, offset: 0, size: qBytes } },
      { binding: 1, resource: { buffer: args.kCache, offset: 0, size: cacheBytes } },
      { binding: 2, resource: { buffer: args.vCache, offset: 0, size: cacheBytes } },
      { binding: 3, resource: { buffer: args.out, offset: 0, size: qBytes } },
      { binding: 4, resource: { buffer: params } },
    ],
  });
  const setStep = (b: number, n = tokens): void => {
    if (!Number.isInteger(n) || n < 1 || n > tokens) fail(`setStep: tokens must be an integer in 1..${tokens}, got ${n}.`);
    if (!Number.isInteger(b) || b < 0 || b + n > maxSeq) {
      fail(`setStep: base must be an integer with base + tokens ≤ maxSeq (${maxSeq}), got ${b} + ${n}.`);
    }
    ctx.device.queue.writeBuffer(params, 0, new Uint32Array([n]));
    ctx.device.queue.writeBuffer(params, 16, new Uint32Array([b]));
  };
  const setMaskStart = (s: number): void => {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) fail(`setMaskStart: expected a non-negative integer, got ${s}.`);
    ctx.device.queue.writeBuffer(params, 20, new Uint32Array([s]));
  };
  return {
    kernel: ATTENTION_KEY,
    label,
    pipeline,
    bindGroup,
    workgroups: [tokens, heads, 1],
    owned: [params],
    maxTokens: tokens,
    maxSeq,
    setStep,
    setMaskStart,
  };
}

export const SPLIT_ATTENTION_KEY = `attention.causal.split.partial.f32.wg${WG}`;
export const SPLIT_COMBINE_KEY = `attention.causal.split.combine.f32.wg${WG}`;

/**
 * Pass 1 of split decode attention: workgroup (tok, h, split) runs the online softmax of `attentionSource` over
 * one contiguous slice of the visible keys and writes the partial (m, l, acc[D]) — unnormalised — to
 * `part[((tok·Hq + h)·splits + split)·(D + 2)]`. The visible range [k_start, k_end) is cut into `splits` slices of
 * ceil(len / splits) keys; a slice with no key writes m = −3e38, l = 0, acc = 0.
 */
export function splitAttentionSource(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, splits: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;             // (T, Hq, D)
@group(0) @binding(1) var<storage, read> k_cache: array<f32>;       // (maxSeq, Hkv, D)
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;       // (maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> part: array<f32>;    // (T, Hq, splits, D + 2)
@group(0) @binding(4) var<uniform> params: Params;

const WG = ${WG}u;
const PER = ${PER_THREAD}u;

var<workgroup> qs: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> ps: array<f32, ${WG}>;
var<workgroup> red: array<f32, ${WG}>;

fn reduce_max(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) { red[t] = red[t] + red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let tok = wg.x;
  let h = wg.y;
  let split = wg.z;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let hkv = params.hkv;
  let kvh = h / (params.hq / hkv);
  let qoff = (tok * params.hq + h) * D;
  for (var d = t; d < D; d += WG) { qs[d] = q[qoff + d]; }
  workgroupBarrier();

  let p = params.base + tok;
  let vis_end = p + 1u;
  var vis_start = params.mask_start;
  if (params.window > 0u && p + 1u > params.window) {
    vis_start = max(vis_start, p + 1u - params.window);
  }
  var len = 0u;
  if (vis_end > vis_start) { len = vis_end - vis_start; }
  let chunk = (len + params.splits - 1u) / params.splits;
  let k_start = vis_start + min(split * chunk, len);
  let k_end = vis_start + min(split * chunk + chunk, len);

  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var k0 = k_start; k0 < k_end; k0 += WG) {
    let j = k0 + t;
    let valid = j < k_end;
    var s = -3.0e38;
    if (valid) {
      let koff = (j * hkv + kvh) * D;
      var dot = 0.0;
      for (var d = 0u; d < D; d++) { dot = fma(qs[d], k_cache[koff + d], dot); }
      s = dot * params.scaling;
      if (params.cap_on != 0u) {
        s = tanh(clamp(s / params.cap, -20.0, 20.0)) * params.cap;
      }
    }
    let m_new = max(m, reduce_max(s, t));
    var pj = 0.0;
    if (valid) { pj = exp(s - m_new); }
    ps[t] = pj;
    let alpha = exp(m - m_new);
    l = l * alpha + reduce_sum(pj, t);
    m = m_new;
    let n = min(WG, k_end - k0);
    for (var i = 0u; i < PER; i++) {
      let d = t + i * WG;
      if (d < D) {
        var a = acc[i] * alpha;
        for (var c = 0u; c < n; c++) {
          a = fma(ps[c], v_cache[((k0 + c) * hkv + kvh) * D + d], a);
        }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }

  let poff = ((tok * params.hq + h) * params.splits + split) * (D + 2u);
  if (t == 0u) {
    part[poff] = m;
    part[poff + 1u] = l;
  }
  for (var i = 0u; i < PER; i++) {
    let d = t + i * WG;
    if (d < D) { part[poff + 2u + d] = acc[i]; }
  }
}
`;
}

/**
 * Pass 2 of split decode attention: workgroup (tok, h) combines the `splits` partials with log-sum-exp rescaling,
 * M = max m_s over slices with l_s > 0, out = Σ exp(m_s − M)·acc_s / Σ exp(m_s − M)·l_s; zeros when no slice saw a
 * key. Each thread owns dims d = tid, tid + 64, …
 */
export function splitCombineSource(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, splits: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> part: array<f32>;          // (T, Hq, splits, D + 2)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;     // (T, Hq, D)
@group(0) @binding(2) var<uniform> params: Params;

const WG = ${WG}u;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let tok = wg.x;
  let h = wg.y;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let S = params.splits;
  let stride = D + 2u;
  let pbase = (tok * params.hq + h) * S * stride;
  var M = -3.0e38;
  for (var s = 0u; s < S; s++) {
    if (part[pbase + s * stride + 1u] > 0.0) { M = max(M, part[pbase + s * stride]); }
  }
  var L = 0.0;
  for (var s = 0u; s < S; s++) {
    let ls = part[pbase + s * stride + 1u];
    if (ls > 0.0) { L = fma(exp(part[pbase + s * stride] - M), ls, L); }
  }
  var inv = 0.0;
  if (L > 0.0) { inv = 1.0 / L; }
  let ooff = (tok * params.hq + h) * D;
  for (var d = t; d < D; d += WG) {
    var a = 0.0;
    for (var s = 0u; s < S; s++) {
      let o = pbase + s * stride;
      if (part[o + 1u] > 0.0) { a = fma(exp(part[o] - M), part[o + 2u + d], a); }
    }
    out[ooff + d] = a * inv;
  }
}
`;
}

export interface SplitDecodeAttentionArgs extends AttentionArgs {
  /** Workgroups per (query, head), each over a contiguous slice of the visible keys (1..256). */
  splits: number;
}

export interface SplitDecodeAttention {
  /** Pass 1 (partials into the scratch buffer), then pass 2 (combine into out); record both, in order. */
  readonly dispatches: readonly [KernelDispatch, KernelDispatch];
  readonly maxTokens: number;
  readonly maxSeq: number;
  readonly splits: number;
  /** As `AttentionDispatch.setStep`: applies to both passes (they share one uniform buffer). */
  setStep(base: number, tokens?: number): void;
  /** As `AttentionDispatch.setMaskStart`. */
  setMaskStart(maskStart: number): void;
}

/** Largest `splits` accepted by `prepareSplitDecodeAttention`. */
export const ATTENTION_MAX_SPLITS = 256;

/**
 * Prepares split (flash-decoding) attention: same inputs and result as `prepareAttention`, in two dispatches. The
 * uniform and the scratch buffer of partials, (tokens, heads, splits, headDim + 2) f32, are owned by the first
 * dispatch (`disposeDispatch(dispatches[0])` frees them); the second owns nothing.
 */
export function prepareSplitDecodeAttention(ctx: GPUContext, args: SplitDecodeAttentionArgs): SplitDecodeAttention {
  const { tokens, heads, kvHeads, headDim, maxSeq, scaling, splits } = args;
  const base = args.base ?? 0;
  const maskStart = args.maskStart ?? 0;
  const window = args.window ?? 0;
  const softCap = args.softCap ?? 0;
  const label = args.label ?? `split-attention ${tokens}x${heads}/${kvHeads}x${headDim}/${splits}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`attention "${label}": ${message}`);
  };
  positiveInt('tokens', tokens, fail);
  positiveInt('heads', heads, fail);
  positiveInt('kvHeads', kvHeads, fail);
  positiveInt('maxSeq', maxSeq, fail);
  if (!Number.isInteger(splits) || splits < 1 || splits > ATTENTION_MAX_SPLITS) {
    fail(`splits must be an integer in 1..${ATTENTION_MAX_SPLITS}, got ${splits}.`);
  }
  if (heads % kvHeads !== 0) fail(`heads (${heads}) must be a multiple of kvHeads (${kvHeads}).`);
  if (!Number.isInteger(headDim) || headDim < 1 || headDim > ATTENTION_MAX_HEAD_DIM) {
    fail(`headDim must be an integer in 1..${ATTENTION_MAX_HEAD_DIM}, got ${headDim}.`);
  }
  if (tokens > maxSeq) fail(`tokens (${tokens}) is above maxSeq (${maxSeq}).`);
  if (!Number.isFinite(scaling) || scaling <= 0) fail(`scaling must be a finite number > 0, got ${scaling}.`);
  if (!Number.isInteger(base) || base < 0 || base + tokens > maxSeq) {
    fail(`base must be an integer with base + tokens ≤ maxSeq (${maxSeq}), got ${base}.`);
  }
  if (!Number.isInteger(maskStart) || maskStart < 0 || maskStart > 0xffffffff) {
    fail(`maskStart must be a non-negative integer, got ${maskStart}.`);
  }
  if (!Number.isInteger(window) || window < 0 || window > 0xffffffff) {
    fail(`window must be a non-negative integer (0: none), got ${window}.`);
  }
  if (!Number.isFinite(softCap) || softCap < 0) fail(`softCap must be a finite number ≥ 0 (0: none), got ${softCap}.`);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (tokens > maxGroups) fail(`tokens (${tokens}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (heads > maxGroups) fail(`heads (${heads}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (maxSeq * kvHeads * headDim > 0xffffffff) fail('maxSeq·kvHeads·headDim does not fit a u32 index.');
  const partElems = tokens * heads * splits * (headDim + 2);
  if (partElems > 0xffffffff) fail('tokens·heads·splits·(headDim + 2) does not fit a u32 index.');

  const qBytes = tokens * heads * headDim * 4;
  const cacheBytes = maxSeq * kvHeads * headDim * 4;
  const partBytes = partElems * 4;
  checkBuffers(
    ctx,
    [
      { name: 'q', buffer: args.q, bytes: qBytes, shape: 'tokens×heads×headDim' },
      { name: 'kCache', buffer: args.kCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
      { name: 'vCache', buffer: args.vCache, bytes: cacheBytes, shape: 'maxSeq×kvHeads×headDim' },
      { name: 'out', buffer: args.out, bytes: qBytes, shape: 'tokens×heads×headDim' },
    ],
    fail,
  );
  if (partBytes > ctx.limits.maxStorageBufferBindingSize) {
    fail(`the partials need a ${partBytes}-byte binding, above this GPU's maxStorageBufferBindingSize.`);
  }
  if (args.out === args.q || args.out === args.kCache || args.out === args.vCache) {
    fail('out must be a buffer of its own, not q or a cache.');
  }

  const partialPipeline = ctx.pipelines.get(SPLIT_ATTENTION_KEY, splitAttentionSource);
  const combinePipeline = ctx.pipelines.get(SPLIT_COMBINE_KEY, splitCombineSource);
  const params = createBuffer(ctx, `${label}/params`, 48, UNIFORM | COPY_DST);
  const scratch = createBuffer(ctx, `${label}/partials`, partBytes, STORAGE);
  const words = new ArrayBuffer(48);
  const u32 = new Uint32Array(words);
  const f32 = new Float32Array(words);
  u32.set([tokens, heads, kvHeads, headDim, base, maskStart, window, softCap > 0 ? 1 : 0]);
  f32[8] = scaling;
  f32[9] = softCap;
  u32[10] = splits;
  writeBuffer(ctx, params, u32);

  const partialGroup = ctx.device.createBindGroup({
    label: `${label}/partial`,
    layout: partialPipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: args.q, offset: 0, size: qBytes } },
      { binding: 1, resource: { buffer: args.kCache, offset: 0, size: cacheBytes } },
      { binding: 2, resource: { buffer: args.vCache, offset: 0, size: cacheBytes } },
      { binding: 3, resource: { buffer: scratch, offset: 0, size: partBytes } },
      { binding: 4, resource: { buffer: params } },
    ],
  });
  const combineGroup = ctx.device.createBindGroup({
    label: `${label}/combine`,
    layout: combinePipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: scratch, offset: 0, size: partBytes } },
      { binding: 1, resource: { buffer: args.out, offset: 0, size: qBytes } },
      { binding: 2, resource: { buffer: params } },
    ],
  });
  const setStep = (b: number, n = tokens): void => {
    if (!Number.isInteger(n) || n < 1 || n > tokens) fail(`setStep: tokens must be an integer in 1..${tokens}, got ${n}.`);
    if (!Number.isInteger(b) || b < 0 || b + n > maxSeq) {
      fail(`setStep: base must be an integer with base + tokens ≤ maxSeq (${maxSeq}), got ${b} + ${n}.`);
    }
    ctx.device.queue.writeBuffer(params, 0, new Uint32Array([n]));
    ctx.device.queue.writeBuffer(params, 16, new Uint32Array([b]));
  };
  const setMaskStart = (s: number): void => {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) fail(`setMaskStart: expected a non-negative integer, got ${s}.`);
    ctx.device.queue.writeBuffer(params, 20, new Uint32Array([s]));
  };
  const partial: KernelDispatch = {
    kernel: SPLIT_ATTENTION_KEY,
    label: `${label}/partial`,
    pipeline: partialPipeline,
    bindGroup: partialGroup,
    workgroups: [tokens, heads, splits],
    owned: [params, scratch],
  };
  const combine: KernelDispatch = {
    kernel: SPLIT_COMBINE_KEY,
    label: `${label}/combine`,
    pipeline: combinePipeline,
    bindGroup: combineGroup,
    workgroups: [tokens, heads, 1],
    owned: [],
  };
  return { dispatches: [partial, combine], maxTokens: tokens, maxSeq, splits, setStep, setMaskStart };
}
