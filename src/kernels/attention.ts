/**
 * Causal self-attention over a key/value cache, grouped-query heads, f32 throughout, for a batch of B sequences
 * (B = 1 unless `batch` is given) in one dispatch.
 *
 *   q: (B, T, Hq, D) f32      queries of the tokens at positions base..base+T−1 of every row
 *   kCache, vCache: (B, maxSeq, Hkv, D) f32, row-major by position; row b's cache starts at b·maxSeq·Hkv·D
 *   out: (B, T, Hq, D) f32
 *   rowMaskStart: (B) u32     first visible key position of each row (its left padding); optional
 *
 * T is the token count of the current step (`setStep`), so q and out are packed densely by it: element
 * ((b·T + t)·Hq + h)·D + d. A dispatch prepared for maxTokens therefore runs a shorter step on a packed input.
 *
 * Query head h reads kv head h / (Hq / Hkv) (repeat_kv). Eager attention in PyTorch:
 *   attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
 *   attn_weights = attn_weights + causal_mask
 *   attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32)
 *   attn_output = torch.matmul(attn_weights, value_states)
 * with optional soft-capping before the mask (Gemma 2):
 *   attn_weights = attn_weights / softcap; attn_weights = torch.tanh(attn_weights); attn_weights = attn_weights * softcap
 *
 * Visible keys for the query at position p = base + t of row b: start_b ≤ j ≤ p, and j > p − window when a window
 * is set, where start_b = max(maskStart, rowMaskStart[b]). A query that sees no key at all (p < start_b, a
 * left-padding position) gets an output of zeros.
 *
 * Flash-style: one 64-thread workgroup per (query, head, row). Keys are taken in blocks of 64, one key per thread
 * for the score; the block max and sum are reduced in workgroup memory and the running max m, sum l and the output
 * accumulator are rescaled by exp(m_old − m_new) (online softmax), so no T×S matrix is ever stored. Each thread
 * owns output dims d = tid, tid + 64, … (D ≤ 256). The same kernel serves prefill (T > 1) and decode (T = 1);
 * decode does not split the sequence across workgroups (one workgroup per head walks all keys).
 *
 * `prepareKvWrite` copies new K and V rows (B, tokens, Hkv, D) into the caches at positions start..start+tokens−1
 * of every row (input packed densely by the current step's token count, as q).
 *
 * Attention bindings (group 0): 0 q (storage, read) · 1 kCache (storage, read) · 2 vCache (storage, read) ·
 * 3 out (storage, read_write) · 4 params (uniform) · 5 rowMaskStart (storage, read).
 * Split decode, partial pass: 0 q · 1 kCache · 2 vCache · 3 partials (read_write) · 4 params · 5 rowMaskStart.
 * Split decode, combine pass: 0 partials (read) · 1 out (read_write) · 2 params (uniform).
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

export const ATTENTION_KEY = `attention.causal.online.batched.f32.wg${WG}`;
export const KV_WRITE_KEY = 'attention.kv-write.batched.f32.wg256';
/** Params and bindings of the single-pass attention kernels (64-thread and serial). */
const ATTENTION_HEADER = /* wgsl */ `struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, _p0: u32, max_seq: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;             // (B, T, Hq, D)
@group(0) @binding(1) var<storage, read> k_cache: array<f32>;       // (B, maxSeq, Hkv, D)
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;       // (B, maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;     // (B, T, Hq, D)
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> row_mask: array<u32>;      // (B) first visible key of each row`;

export const ATTENTION_SERIAL_KEY = 'attention.causal.online.batched.f32.serial';

/**
 * The same attention, one invocation per (query, head, sequence) walking its keys one at a time with an online
 * softmax, and no workgroup memory or barrier: for CPU adapters (`ctx.adapter.cpu`), where each barrier of the
 * 64-thread kernel costs a coroutine switch per invocation. Same bindings, params and grid as `attentionSource`.
 */
export function attentionSerialSource(): string {
  return /* wgsl */ `
${ATTENTION_HEADER}

@compute @workgroup_size(1, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u) {
  let tok = wg.x;
  let h = wg.y;
  let b = wg.z;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let hkv = params.hkv;
  let kvh = h / (params.hq / hkv);                // repeat_kv
  let qoff = ((b * params.tokens + tok) * params.hq + h) * D;
  let cbase = b * params.max_seq;
  let p = params.base + tok;
  let k_end = p + 1u;                             // causal: keys j ≤ p
  var k_start = max(params.mask_start, row_mask[b]);
  if (params.window > 0u && p + 1u > params.window) { k_start = max(k_start, p + 1u - params.window); }

  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
  for (var j = k_start; j < k_end; j++) {
    let koff = ((cbase + j) * hkv + kvh) * D;
    var dot = 0.0;
    for (var d = 0u; d < D; d++) { dot = fma(q[qoff + d], k_cache[koff + d], dot); }
    var s = dot * params.scaling;
    if (params.cap_on != 0u) { s = tanh(clamp(s / params.cap, -20.0, 20.0)) * params.cap; }
    // online softmax: rescale what was summed when the running max moves
    let m_new = max(m, s);
    let alpha = exp(m - m_new);
    let pj = exp(s - m_new);
    l = l * alpha + pj;
    m = m_new;
    for (var d = 0u; d < D; d++) { acc[d] = fma(pj, v_cache[koff + d], acc[d] * alpha); }
  }
  var inv = 0.0;
  if (l > 0.0) { inv = 1.0 / l; }
  for (var d = 0u; d < D; d++) { out[qoff + d] = acc[d] * inv; }
}
`;
}

export function attentionSource(): string {
  return /* wgsl */ `
${ATTENTION_HEADER}

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
  let b = wg.z;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let hkv = params.hkv;
  // repeat_kv: query head h reads kv head h / n_rep.
  let kvh = h / (params.hq / hkv);
  let qoff = ((b * params.tokens + tok) * params.hq + h) * D;
  let cbase = b * params.max_seq;               // row b's cache starts at position b·maxSeq
  for (var d = t; d < D; d += WG) { qs[d] = q[qoff + d]; }
  workgroupBarrier();

  let p = params.base + tok;
  let k_end = p + 1u;                          // causal: keys j ≤ p
  // left padding: keys before max(mask_start, row_mask[b]) are invisible
  var k_start = max(params.mask_start, row_mask[b]);
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
      let koff = ((cbase + j) * hkv + kvh) * D;
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
          a = fma(ps[c], v_cache[((cbase + k0 + c) * hkv + kvh) * D + d], a);
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
struct Params { tokens: u32, row: u32, start: u32, max_seq: u32 }

@group(0) @binding(0) var<storage, read> k: array<f32>;              // (B, tokens, Hkv, D)
@group(0) @binding(1) var<storage, read> v: array<f32>;              // (B, tokens, Hkv, D)
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;  // (B, maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;  // (B, maxSeq, Hkv, D)
@group(0) @binding(4) var<uniform> params: Params;

// Grid: x covers the tokens·row elements of one batch row, y is the batch row b.
@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  let b = gid.y;
  let n = params.tokens * params.row;
  if (i >= n) { return; }
  // key_states = torch.cat([past_key, key_states], dim=-2), written in place at positions start.. of row b
  let src = b * n + i;
  let dst = (b * params.max_seq + params.start) * params.row + i;
  k_cache[dst] = k[src];
  v_cache[dst] = v[src];
}
`;
}

interface BufferCheck {
  name: string;
  buffer: GPUBuffer;
  bytes: number;
  shape: string;
  /** Element type named in the message (default f32). */
  type?: string;
}

function checkBuffers(ctx: GPUContext, list: BufferCheck[], fail: (m: string) => never): void {
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  for (const b of list) {
    if (b.buffer.size < b.bytes) {
      fail(
        `buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} ${b.type ?? 'f32'} needs ${b.bytes}.`,
      );
    }
    if (b.bytes > maxBinding) {
      fail(`${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`);
    }
  }
}

function positiveInt(name: string, v: number, fail: (m: string) => never): void {
  if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got ${v}.`);
}

/** The batch size of `args.batch` (default 1), validated. */
function batchOf(batch: number | undefined, fail: (m: string) => never): number {
  const B = batch ?? 1;
  positiveInt('batch', B, fail);
  return B;
}

/** " batch B" for default labels when B > 1, so B = 1 keeps its old label. */
function batchTag(batch: number | undefined): string {
  return batch !== undefined && batch !== 1 ? ` batch ${batch}` : '';
}

export interface KvWriteArgs {
  /** (batch, tokens, Hkv, D) f32 new keys, packed densely by the current step's token count. */
  k: GPUBuffer;
  /** (batch, tokens, Hkv, D) f32 new values, packed as k. */
  v: GPUBuffer;
  /** (batch, maxSeq, Hkv, D) f32 key cache. */
  kCache: GPUBuffer;
  /** (batch, maxSeq, Hkv, D) f32 value cache. */
  vCache: GPUBuffer;
  /** Most tokens one write copies per batch row (the rows of k and v). */
  tokens: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  /** Sequences written by one dispatch, each with its own maxSeq-position cache (default 1). */
  batch?: number;
  /** First cache position written (default 0, the same for every batch row); change it per step with `setStep`. */
  start?: number;
  label?: string;
}

export interface KvWriteDispatch extends KernelDispatch {
  readonly maxTokens: number;
  readonly maxSeq: number;
  readonly batch: number;
  /**
   * Aims later submissions at cache positions start..start+tokens−1 of every batch row (tokens 1..maxTokens,
   * start + tokens ≤ maxSeq); k and v are then read as (batch, tokens, Hkv, D), packed by this step's tokens.
   * Goes through `queue.writeBuffer`: it applies to command buffers submitted after the call.
   */
  setStep(start: number, tokens?: number): void;
}

/** Prepares the copy of new K and V rows into the caches; record it with `recordDispatches`. */
export function prepareKvWrite(ctx: GPUContext, args: KvWriteArgs): KvWriteDispatch {
  const { tokens, kvHeads, headDim, maxSeq } = args;
  const start = args.start ?? 0;
  const label = args.label ?? `kv-write ${tokens}x${kvHeads}x${headDim}${batchTag(args.batch)}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`kv-write "${label}": ${message}`);
  };
  positiveInt('tokens', tokens, fail);
  positiveInt('kvHeads', kvHeads, fail);
  positiveInt('headDim', headDim, fail);
  positiveInt('maxSeq', maxSeq, fail);
  const batch = batchOf(args.batch, fail);
  if (tokens > maxSeq) fail(`tokens (${tokens}) is above maxSeq (${maxSeq}).`);
  if (!Number.isInteger(start) || start < 0 || start + tokens > maxSeq) {
    fail(`start must be an integer with start + tokens ≤ maxSeq (${maxSeq}), got ${start}.`);
  }
  const row = kvHeads * headDim;
  if (maxSeq * row > 0xffffffff) fail(`maxSeq·kvHeads·headDim (${maxSeq * row}) does not fit a u32 index.`);
  if (batch * maxSeq * row > 0xffffffff) {
    fail(`batch·maxSeq·kvHeads·headDim (${batch * maxSeq * row}) does not fit a u32 index.`);
  }
  const groups = Math.ceil((tokens * row) / 256);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (groups > maxGroups) fail(`tokens·kvHeads·headDim needs ${groups} workgroups, above this GPU's limit of ${maxGroups}.`);
  if (batch > maxGroups) fail(`batch (${batch}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  const newBytes = batch * tokens * row * 4;
  const cacheBytes = batch * maxSeq * row * 4;
  const b = batch > 1 ? 'batch×' : '';
  checkBuffers(
    ctx,
    [
      { name: 'k', buffer: args.k, bytes: newBytes, shape: `${b}tokens×kvHeads×headDim` },
      { name: 'v', buffer: args.v, bytes: newBytes, shape: `${b}tokens×kvHeads×headDim` },
      { name: 'kCache', buffer: args.kCache, bytes: cacheBytes, shape: `${b}maxSeq×kvHeads×headDim` },
      { name: 'vCache', buffer: args.vCache, bytes: cacheBytes, shape: `${b}maxSeq×kvHeads×headDim` },
    ],
    fail,
  );
  if (args.kCache === args.vCache) fail('kCache and vCache must be different buffers.');
  for (const c of [args.kCache, args.vCache]) {
    if (c === args.k || c === args.v) fail('the caches must not be the same buffers as k or v.');
  }

  const pipeline = ctx.pipelines.get(KV_WRITE_KEY, kvWriteSource);
  const params = createBuffer(ctx, `${label}/params`, 16, UNIFORM | COPY_DST);
  const words = new Uint32Array([tokens, row, start, maxSeq]); // patched by setStep, so a step allocates nothing
  writeBuffer(ctx, params, words);
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
    words[0] = n;
    words[2] = s;
    ctx.device.queue.writeBuffer(params, 0, words, 0, 3);
  };
  return {
    kernel: KV_WRITE_KEY,
    label,
    pipeline,
    bindGroup,
    workgroups: [groups, batch, 1],
    owned: [params],
    maxTokens: tokens,
    maxSeq,
    batch,
    setStep,
  };
}

export interface AttentionArgs {
  /** (batch, tokens, Hq, D) f32 queries, packed densely by the current step's token count. */
  q: GPUBuffer;
  /** (batch, maxSeq, Hkv, D) f32 key cache, each row holding positions 0..base+tokens−1. */
  kCache: GPUBuffer;
  /** (batch, maxSeq, Hkv, D) f32 value cache. */
  vCache: GPUBuffer;
  /** (batch, tokens, Hq, D) f32 output, packed as q; only its first batch·tokens·Hq·D elements are written. */
  out: GPUBuffer;
  /** Most queries one dispatch handles per batch row (rows of q and out). */
  tokens: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  maxSeq: number;
  /** Multiplies q·k (usually 1/sqrt(headDim)). */
  scaling: number;
  /** Sequences attended by one dispatch, each with its own caches and queries (default 1). */
  batch?: number;
  /** Position of the first query (default 0, the same for every batch row); change it per step with `setStep`. */
  base?: number;
  /** Keys before this position are invisible (left padding) in every row; default 0. */
  maskStart?: number;
  /**
   * (batch) u32: the first visible key position of each row (e.g. its left-padding count); row b's keys before
   * max(maskStart, rowMaskStart[b]) are invisible. Read at run time, so the caller may rewrite it between steps.
   * Omitted: a zero-filled buffer owned by the dispatch (no per-row padding).
   */
  rowMaskStart?: GPUBuffer;
  /** Sliding window: the query at p sees keys j > p − window. Omitted or 0: no window. */
  window?: number;
  /** Soft-capping of the scores, tanh(s / cap) * cap, before the mask. Omitted or 0: none. */
  softCap?: number;
  label?: string;
  /**
   * `prepareAttention` only: force the one-invocation-per-query kernel (true) or the 64-thread one (false); default:
   * serial on CPU adapters.
   */
  serial?: boolean;
}

export interface AttentionDispatch extends KernelDispatch {
  readonly maxTokens: number;
  readonly maxSeq: number;
  readonly batch: number;
  /**
   * Aims later submissions at queries base..base+tokens−1 of every batch row (tokens 1..maxTokens,
   * base + tokens ≤ maxSeq); q and out are then (batch, tokens, Hq, D), packed by this step's tokens. Goes
   * through `queue.writeBuffer`: it applies to command buffers submitted after the call.
   */
  setStep(base: number, tokens?: number): void;
  /** Sets the first visible key position (left padding) of every row for later submissions. */
  setMaskStart(maskStart: number): void;
}

/**
 * The validation shared by `prepareAttention` and `prepareSplitDecodeAttention`; `beforeShape` (the checks of
 * `splits`) runs once the sizes are known positive integers. Returns the batch size and the binding sizes.
 */
function checkAttention(
  ctx: GPUContext,
  args: AttentionArgs,
  fail: (m: string) => never,
  beforeShape?: (batch: number) => void,
): { batch: number; qBytes: number; cacheBytes: number; maskBytes: number } {
  const { tokens, heads, kvHeads, headDim, maxSeq, scaling } = args;
  const base = args.base ?? 0;
  const maskStart = args.maskStart ?? 0;
  const window = args.window ?? 0;
  const softCap = args.softCap ?? 0;
  positiveInt('tokens', tokens, fail);
  positiveInt('heads', heads, fail);
  positiveInt('kvHeads', kvHeads, fail);
  positiveInt('maxSeq', maxSeq, fail);
  const batch = batchOf(args.batch, fail);
  beforeShape?.(batch);
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
  if (batch > maxGroups) fail(`batch (${batch}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
  if (maxSeq * kvHeads * headDim > 0xffffffff) fail('maxSeq·kvHeads·headDim does not fit a u32 index.');
  if (batch * maxSeq * kvHeads * headDim > 0xffffffff) fail('batch·maxSeq·kvHeads·headDim does not fit a u32 index.');
  if (batch * tokens * heads * headDim > 0xffffffff) fail('batch·tokens·heads·headDim does not fit a u32 index.');

  const qBytes = batch * tokens * heads * headDim * 4;
  const cacheBytes = batch * maxSeq * kvHeads * headDim * 4;
  const maskBytes = batch * 4;
  const b = batch > 1 ? 'batch×' : '';
  const checks: BufferCheck[] = [
    { name: 'q', buffer: args.q, bytes: qBytes, shape: `${b}tokens×heads×headDim` },
    { name: 'kCache', buffer: args.kCache, bytes: cacheBytes, shape: `${b}maxSeq×kvHeads×headDim` },
    { name: 'vCache', buffer: args.vCache, bytes: cacheBytes, shape: `${b}maxSeq×kvHeads×headDim` },
    { name: 'out', buffer: args.out, bytes: qBytes, shape: `${b}tokens×heads×headDim` },
  ];
  if (args.rowMaskStart) {
    checks.push({ name: 'rowMaskStart', buffer: args.rowMaskStart, bytes: maskBytes, shape: 'batch', type: 'u32' });
  }
  checkBuffers(ctx, checks, fail);
  if (args.out === args.q || args.out === args.kCache || args.out === args.vCache) {
    fail('out must be a buffer of its own, not q or a cache.');
  }
  if (args.rowMaskStart && args.rowMaskStart === args.out) fail('rowMaskStart must not be the same buffer as out.');
  return { batch, qBytes, cacheBytes, maskBytes };
}

/** The params uniform shared by the attention kernels (48 bytes; see their Params structs). */
function attentionParams(args: AttentionArgs, splits: number): Uint32Array<ArrayBuffer> {
  const words = new ArrayBuffer(48);
  const u32 = new Uint32Array(words);
  const f32 = new Float32Array(words);
  const softCap = args.softCap ?? 0;
  u32.set([args.tokens, args.heads, args.kvHeads, args.headDim]);
  u32.set([args.base ?? 0, args.maskStart ?? 0, args.window ?? 0, softCap > 0 ? 1 : 0], 4);
  f32[8] = args.scaling;
  f32[9] = softCap;
  u32[10] = splits;
  u32[11] = args.maxSeq;
  return u32;
}

/**
 * `setStep` / `setMaskStart` of the attention dispatches: they patch the words of the params uniform they keep
 * (`words`, as first written) and write just those, so a decode step allocates nothing.
 */
function stepSetters(
  ctx: GPUContext,
  params: GPUBuffer,
  words: Uint32Array<ArrayBuffer>,
  tokens: number,
  maxSeq: number,
  fail: (message: string) => never,
): { setStep(base: number, n?: number): void; setMaskStart(s: number): void } {
  return {
    setStep(b: number, n = tokens): void {
      if (!Number.isInteger(n) || n < 1 || n > tokens) fail(`setStep: tokens must be an integer in 1..${tokens}, got ${n}.`);
      if (!Number.isInteger(b) || b < 0 || b + n > maxSeq) {
        fail(`setStep: base must be an integer with base + tokens ≤ maxSeq (${maxSeq}), got ${b} + ${n}.`);
      }
      words[0] = n;
      words[4] = b;
      ctx.device.queue.writeBuffer(params, 0, words, 0, 5); // tokens … base
    },
    setMaskStart(s: number): void {
      if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) fail(`setMaskStart: expected a non-negative integer, got ${s}.`);
      words[5] = s;
      ctx.device.queue.writeBuffer(params, 20, words, 5, 1);
    },
  };
}

/** args.rowMaskStart, or a zero-filled (batch) u32 buffer the caller must put in its dispatch's `owned`. */
function rowMaskBuffer(
  ctx: GPUContext,
  args: AttentionArgs,
  label: string,
  maskBytes: number,
): { buffer: GPUBuffer; owned: GPUBuffer[] } {
  if (args.rowMaskStart) return { buffer: args.rowMaskStart, owned: [] };
  // WebGPU zero-initialises new buffers; the write makes the intent explicit.
  const buffer = createBuffer(ctx, `${label}/row-mask-start`, maskBytes, STORAGE | COPY_DST);
  writeBuffer(ctx, buffer, new Uint32Array(maskBytes / 4));
  return { buffer, owned: [buffer] };
}

/** Prepares causal attention of q over the caches; record it with `recordDispatches`. */
export function prepareAttention(ctx: GPUContext, args: AttentionArgs): AttentionDispatch {
  const { tokens, heads, kvHeads, headDim, maxSeq } = args;
  const label = args.label ?? `attention ${tokens}x${heads}/${kvHeads}x${headDim}${batchTag(args.batch)}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`attention "${label}": ${message}`);
  };
  const { batch, qBytes, cacheBytes, maskBytes } = checkAttention(ctx, args, fail);

  const serial = args.serial ?? ctx.adapter.cpu;
  const kernel = serial ? ATTENTION_SERIAL_KEY : ATTENTION_KEY;
  const pipeline = ctx.pipelines.get(kernel, serial ? attentionSerialSource : attentionSource);
  const params = createBuffer(ctx, `${label}/params`, 48, UNIFORM | COPY_DST);
  const words = attentionParams(args, 0);
  writeBuffer(ctx, params, words);
  const rowMask = rowMaskBuffer(ctx, args, label, maskBytes);

  const bindGroup = ctx.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: args.q, offset: 0, size: qBytes } },
      { binding: 1, resource: { buffer: args.kCache, offset: 0, size: cacheBytes } },
      { binding: 2, resource: { buffer: args.vCache, offset: 0, size: cacheBytes } },
      { binding: 3, resource: { buffer: args.out, offset: 0, size: qBytes } },
      { binding: 4, resource: { buffer: params } },
      { binding: 5, resource: { buffer: rowMask.buffer, offset: 0, size: maskBytes } },
    ],
  });
  const { setStep, setMaskStart } = stepSetters(ctx, params, words, tokens, maxSeq, fail);
  return {
    kernel,
    label,
    pipeline,
    bindGroup,
    workgroups: [tokens, heads, batch],
    owned: [params, ...rowMask.owned],
    maxTokens: tokens,
    maxSeq,
    batch,
    setStep,
    setMaskStart,
  };
}

export const SPLIT_ATTENTION_KEY = `attention.causal.split.partial.batched.f32.wg${WG}`;
export const SPLIT_COMBINE_KEY = `attention.causal.split.combine.batched.f32.wg${WG}`;

/**
 * Pass 1 of split decode attention: workgroup (tok, h, b·splits + split) runs the online softmax of
 * `attentionSource` over one contiguous slice of the visible keys of batch row b and writes the partial
 * (m, l, acc[D]) — unnormalised — to `part[(((b·T + tok)·Hq + h)·splits + split)·(D + 2)]`. The visible range
 * [k_start, k_end) is cut into `splits` slices of ceil(len / splits) keys; a slice with no key writes m = −3e38,
 * l = 0, acc = 0.
 */
export function splitAttentionSource(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, splits: u32, max_seq: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;             // (B, T, Hq, D)
@group(0) @binding(1) var<storage, read> k_cache: array<f32>;       // (B, maxSeq, Hkv, D)
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;       // (B, maxSeq, Hkv, D)
@group(0) @binding(3) var<storage, read_write> part: array<f32>;    // (B, T, Hq, splits, D + 2)
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<storage, read> row_mask: array<u32>;      // (B) first visible key of each row

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
  let b = wg.z / params.splits;
  let split = wg.z % params.splits;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let hkv = params.hkv;
  let kvh = h / (params.hq / hkv);
  let row = b * params.tokens + tok;            // query row in the (B, T) packing
  let qoff = (row * params.hq + h) * D;
  let cbase = b * params.max_seq;               // row b's cache starts at position b·maxSeq
  for (var d = t; d < D; d += WG) { qs[d] = q[qoff + d]; }
  workgroupBarrier();

  let p = params.base + tok;
  let vis_end = p + 1u;
  var vis_start = max(params.mask_start, row_mask[b]);
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
      let koff = ((cbase + j) * hkv + kvh) * D;
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
          a = fma(ps[c], v_cache[((cbase + k0 + c) * hkv + kvh) * D + d], a);
        }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }

  let poff = ((row * params.hq + h) * params.splits + split) * (D + 2u);
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
 * Pass 2 of split decode attention: workgroup (tok, h, b) combines the `splits` partials with log-sum-exp rescaling,
 * M = max m_s over slices with l_s > 0, out = Σ exp(m_s − M)·acc_s / Σ exp(m_s − M)·l_s; zeros when no slice saw a
 * key. Each thread owns dims d = tid, tid + 64, …
 */
export function splitCombineSource(): string {
  return /* wgsl */ `
struct Params {
  tokens: u32, hq: u32, hkv: u32, dim: u32,
  base: u32, mask_start: u32, window: u32, cap_on: u32,
  scaling: f32, cap: f32, splits: u32, max_seq: u32,
}

@group(0) @binding(0) var<storage, read> part: array<f32>;          // (B, T, Hq, splits, D + 2)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;     // (B, T, Hq, D)
@group(0) @binding(2) var<uniform> params: Params;

const WG = ${WG}u;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let tok = wg.x;
  let h = wg.y;
  let b = wg.z;
  if (tok >= params.tokens) { return; }
  let D = params.dim;
  let S = params.splits;
  let stride = D + 2u;
  let row = b * params.tokens + tok;            // query row in the (B, T) packing
  let pbase = (row * params.hq + h) * S * stride;
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
  let ooff = (row * params.hq + h) * D;
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
  /** Workgroups per (query, head, batch row), each over a contiguous slice of the visible keys (1..256). */
  splits: number;
}

export interface SplitDecodeAttention {
  /** Pass 1 (partials into the scratch buffer), then pass 2 (combine into out); record both, in order. */
  readonly dispatches: readonly [KernelDispatch, KernelDispatch];
  readonly maxTokens: number;
  readonly maxSeq: number;
  readonly batch: number;
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
 * uniform, the scratch buffer of partials, (batch, tokens, heads, splits, headDim + 2) f32, and the zero row mask
 * made when `rowMaskStart` is omitted are owned by the first dispatch (`disposeDispatch(dispatches[0])` frees
 * them); the second owns nothing.
 */
export function prepareSplitDecodeAttention(ctx: GPUContext, args: SplitDecodeAttentionArgs): SplitDecodeAttention {
  const { tokens, heads, kvHeads, headDim, maxSeq, splits } = args;
  const label =
    args.label ?? `split-attention ${tokens}x${heads}/${kvHeads}x${headDim}/${splits}${batchTag(args.batch)}`;
  const fail = (message: string): never => {
    throw new GPUValidationError(`attention "${label}": ${message}`);
  };
  const { batch, qBytes, cacheBytes, maskBytes } = checkAttention(ctx, args, fail, (b) => {
    if (!Number.isInteger(splits) || splits < 1 || splits > ATTENTION_MAX_SPLITS) {
      fail(`splits must be an integer in 1..${ATTENTION_MAX_SPLITS}, got ${splits}.`);
    }
    const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
    if (b * splits > maxGroups) {
      fail(`batch·splits (${b * splits}) is above this GPU's limit of ${maxGroups} workgroups per dimension.`);
    }
  });
  const partElems = batch * tokens * heads * splits * (headDim + 2);
  if (partElems > 0xffffffff) fail('batch·tokens·heads·splits·(headDim + 2) does not fit a u32 index.');
  const partBytes = partElems * 4;
  if (partBytes > ctx.limits.maxStorageBufferBindingSize) {
    fail(`the partials need a ${partBytes}-byte binding, above this GPU's maxStorageBufferBindingSize.`);
  }

  const partialPipeline = ctx.pipelines.get(SPLIT_ATTENTION_KEY, splitAttentionSource);
  const combinePipeline = ctx.pipelines.get(SPLIT_COMBINE_KEY, splitCombineSource);
  const params = createBuffer(ctx, `${label}/params`, 48, UNIFORM | COPY_DST);
  const words = attentionParams(args, splits);
  writeBuffer(ctx, params, words);
  const scratch = createBuffer(ctx, `${label}/partials`, partBytes, STORAGE);
  const rowMask = rowMaskBuffer(ctx, args, label, maskBytes);

  const partialGroup = ctx.device.createBindGroup({
    label: `${label}/partial`,
    layout: partialPipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: args.q, offset: 0, size: qBytes } },
      { binding: 1, resource: { buffer: args.kCache, offset: 0, size: cacheBytes } },
      { binding: 2, resource: { buffer: args.vCache, offset: 0, size: cacheBytes } },
      { binding: 3, resource: { buffer: scratch, offset: 0, size: partBytes } },
      { binding: 4, resource: { buffer: params } },
      { binding: 5, resource: { buffer: rowMask.buffer, offset: 0, size: maskBytes } },
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
  const { setStep, setMaskStart } = stepSetters(ctx, params, words, tokens, maxSeq, fail);
  const partial: KernelDispatch = {
    kernel: SPLIT_ATTENTION_KEY,
    label: `${label}/partial`,
    pipeline: partialPipeline,
    bindGroup: partialGroup,
    workgroups: [tokens, heads, batch * splits],
    owned: [params, scratch, ...rowMask.owned],
  };
  const combine: KernelDispatch = {
    kernel: SPLIT_COMBINE_KEY,
    label: `${label}/combine`,
    pipeline: combinePipeline,
    bindGroup: combineGroup,
    workgroups: [tokens, heads, batch],
    owned: [],
  };
  return { dispatches: [partial, combine], maxTokens: tokens, maxSeq, batch, splits, setStep, setMaskStart };
}
