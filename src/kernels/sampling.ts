/**
 * Logits processing and token sampling on the GPU, with the semantics of Hugging Face transformers'
 * `generate()`: RepetitionPenaltyLogitsProcessor, then TemperatureLogitsWarper, TopKLogitsWarper,
 * TopPLogitsWarper and MinPLogitsWarper, then a multinomial draw (or argmax when greedy).
 *
 *   logits:  (rows, vocab) f32, row-major       read only
 *   history: ids (rows, stride) u32 + counts (rows) u32, optional: previous token ids per row
 *   scores:  (rows, vocab) f32, scratch         processed logits (penalty and temperature applied, before
 *                                               filtering); pass your own buffer to read them for debugging
 *   tokens:  (rows) u32                         the sampled token id per row; nothing else is written
 *
 * One workgroup per row (64 threads up to vocab 4,096, 256 above); every pass is a strided sweep over the row
 * plus a two-level shared-memory reduction (three barriers), so a row of any vocab size (262,144 and beyond)
 * needs no sort and no extra dispatch. At most 2 + 32 (top-k) + 33 (top-p) + 2 sweeps per row:
 *
 *  1. scores[i] = logits[i] / T (T = 1 when greedy); then for each id in the history (duplicates write the
 *     same value, so each distinct id is penalised once; ids ≥ vocab are ignored):
 *     scores[id] = (x < 0 ? x · penalty : x / penalty) / T with x = logits[id].
 *  2. argmax over scores: ties go to the lowest id, as torch.argmax. Greedy (flag, or temperature ≤ 0) stops here.
 *  3. Floats are mapped to order-preserving u32 keys. Top-k: the key of the k-th largest score is found exactly
 *     by a 32-step bitwise search, each step counting the scores whose key is ≥ the candidate (it stops early
 *     once exactly k scores lie at or above the candidate: that set is already final). Tokens with a
 *     score ≥ that k-th largest score are kept (HF removes `scores < topk(scores)[-1]`, so ties with the k-th
 *     value are kept, and more than k tokens can survive when there are ties).
 *  4. Top-p: with e_i = exp(s_i − max) over the top-k survivors and Z their sum, a second 32-step search finds the
 *     largest key t such that Σ{e_i : key_i ≥ t} ≥ p·Z. Tokens with key ≥ t are kept: exactly the tokens whose
 *     strictly-more-probable mass is < p, which is HF's rule (remove where the ascending cumulative probability
 *     ≤ 1 − p). The most probable token is always kept. Tokens tied at the boundary are all kept (HF keeps some
 *     of a tie by sort order); sums are f32 in a different order than torch, so a token whose cumulative mass is
 *     within f32 rounding of p may be decided differently.
 *  5. Min-p: keep e_i ≥ min_p (that is, prob_i ≥ min_p · max prob; normalisation cancels).
 *  6. Draw: u = uniform(seed, step, row) · Σ kept e_i; the token is the first in id order whose inclusive prefix
 *     sum of kept e_i exceeds u (each thread owns a contiguous chunk; thread 0 scans the chunk sums in order).
 *     uniform() is a PCG hash chain of (seed, step, row) → 24 bits → [0, 1): counter based, so the same
 *     (seed, step, row) always gives the same draw and no RNG state lives on the GPU.
 *
 * Parameters live in a uniform buffer the dispatch owns; `update()` rewrites it with `writeBuffer`, so a decode
 * loop records the same dispatch every step and changes only `step` (and whatever else it wants).
 * NaN logits are not supported.
 *
 * Bindings (group 0): 0 logits (storage, read) · 1 history ids (storage, read) · 2 history counts (storage, read)
 * · 3 scores (storage, read_write) · 4 tokens (storage, read_write) · 5 params (uniform).
 */
import { GPUValidationError } from '../errors.js';
import { createBuffer, STORAGE, writeBuffer } from '../runtime/buffers.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, type KernelDispatch } from './dispatch.js';


/** Workgroup sizes: 64 threads for rows of up to 4,096 logits, 256 above. */
export function samplingWorkgroupSize(vocab: number): 64 | 256 {
  return vocab <= 4096 ? 64 : 256;
}

export function samplingKey(wg: 64 | 256): string {
  return `sampling.f32.wg${wg}`;
}

export function samplingSource(WG: 64 | 256 = 256): string {
  const PART = WG === 256 ? 16 : 8; // PART² = WG
  return /* wgsl */ `
struct Params {
  vocab: u32, rows: u32, histStride: u32, greedy: u32,
  temperature: f32, topK: u32, topP: f32, minP: f32,
  penalty: f32, seed: u32, step: u32, suppressSteps: u32,
  suppressCount: u32, _p0: u32, _p1: u32, _p2: u32,
  suppressIds: array<vec4u, 2>,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;         // (rows, vocab)
@group(0) @binding(1) var<storage, read> histIds: array<u32>;        // (rows, histStride)
@group(0) @binding(2) var<storage, read> histCounts: array<u32>;     // (rows)
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;   // (rows, vocab)
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;   // (rows)
@group(0) @binding(5) var<uniform> p: Params;

const WG = ${WG}u;
const PART = ${PART}u;

var<workgroup> redF: array<f32, ${WG}>;
var<workgroup> redU: array<u32, ${WG}>;
var<workgroup> redI: array<u32, ${WG}>;
var<workgroup> prefix: array<f32, ${WG + 1}>;
var<workgroup> partF: array<f32, PART>;
var<workgroup> partU: array<u32, PART>;
var<workgroup> outF: f32;
var<workgroup> outU: u32;
var<workgroup> lastOwner: u32;
var<workgroup> picked: u32;

// Order-preserving map f32 -> u32: a < b  <=>  key(a) < key(b) (for non-NaN values).
fn orderKey(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniform01(seed: u32, step: u32, row: u32) -> f32 {
  var h = pcg(seed);
  h = pcg(h ^ step);
  h = pcg(h ^ pcg(row + 0x9e3779b9u));
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

// Workgroup sums in two levels (PART groups of PART values), three barriers each; the result comes back through
// workgroupUniformLoad so loops may branch on it.
fn sumF(li: u32, v: f32) -> f32 {
  redF[li] = v;
  workgroupBarrier();
  if (li < PART) {
    var a = 0.0;
    for (var j = 0u; j < PART; j++) { a += redF[li * PART + j]; }
    partF[li] = a;
  }
  workgroupBarrier();
  if (li == 0u) {
    var a = 0.0;
    for (var j = 0u; j < PART; j++) { a += partF[j]; }
    outF = a;
  }
  return workgroupUniformLoad(&outF);
}

fn sumU(li: u32, v: u32) -> u32 {
  redU[li] = v;
  workgroupBarrier();
  if (li < PART) {
    var a = 0u;
    for (var j = 0u; j < PART; j++) { a += redU[li * PART + j]; }
    partU[li] = a;
  }
  workgroupBarrier();
  if (li == 0u) {
    var a = 0u;
    for (var j = 0u; j < PART; j++) { a += partU[j]; }
    outU = a;
  }
  return workgroupUniformLoad(&outU);
}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wg.x;
  let V = p.vocab;
  let base = row * V;
  let greedy = p.greedy != 0u || !(p.temperature > 0.0);
  var T = 1.0;
  if (!greedy) { T = p.temperature; }

  // 1. Temperature, then the repetition penalty on the history ids (computed from the raw logit, so repeated
  //    ids write the same value).
  for (var i = li; i < V; i += WG) { scores[base + i] = logits[base + i] / T; }
  storageBarrier();
  if (p.penalty != 1.0 && p.histStride > 0u) {
    let n = min(histCounts[row], p.histStride);
    for (var j = li; j < n; j += WG) {
      let id = histIds[row * p.histStride + j];
      if (id < V) {
        let x = logits[base + id];
        var y = x / p.penalty;
        if (x < 0.0) { y = x * p.penalty; }
        scores[base + id] = y / T;
      }
    }
  }
  storageBarrier();
  // min_new_tokens: while step < suppressSteps the suppressed ids (EOS) get the lowest finite score, so they are
  // never the argmax and exp(s − max) is exactly 0 (WGSL may assume no infinities, so not −inf).
  if (p.step < p.suppressSteps) {
    for (var j = li; j < p.suppressCount; j += WG) {
      let id = p.suppressIds[j / 4u][j % 4u];
      if (id < V) { scores[base + id] = -3.4028234663852886e38; }
    }
  }
  storageBarrier();

  // 2. Argmax, ties to the lowest id.
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var i = li; i < V; i += WG) {
    let k = orderKey(scores[base + i]);
    if (bi == 0xffffffffu || k > bk) { bk = k; bi = i; }
  }
  redU[li] = bk;
  redI[li] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      let ok = redU[li + s];
      let oi = redI[li + s];
      let mi = redI[li];
      if (oi != 0xffffffffu && (mi == 0xffffffffu || ok > redU[li] || (ok == redU[li] && oi < mi))) {
        redU[li] = ok;
        redI[li] = oi;
      }
    }
    workgroupBarrier();
  }
  let amax = redI[0];
  workgroupBarrier();
  if (greedy) {
    if (li == 0u) { tokens[row] = amax; }
    return;
  }
  let m = scores[base + amax];

  // 3. Top-k: the key of the k-th largest score, bit by bit from the top.
  var tk = 0u;
  if (p.topK > 0u && p.topK < V) {
    for (var b = 0u; b < 32u; b++) {
      let cand = tk | (0x80000000u >> b);
      var c = 0u;
      for (var i = li; i < V; i += WG) {
        if (orderKey(scores[base + i]) >= cand) { c += 1u; }
      }
      let count = sumU(li, c);
      if (count == p.topK) { tk = cand; break; }  // exactly k at or above: the set is final
      if (count > p.topK) { tk = cand; }
    }
  }

  // 4. Top-p: the largest key t whose mass at or above it (among the top-k survivors) is >= p.
  var tp = 0u;
  if (p.topP < 1.0) {
    var z = 0.0;
    for (var i = li; i < V; i += WG) {
      let s = scores[base + i];
      if (orderKey(s) >= tk) { z += exp(s - m); }
    }
    let need = p.topP * sumF(li, z);
    for (var b = 0u; b < 32u; b++) {
      let cand = tp | (0x80000000u >> b);
      let lo = max(cand, tk);
      var acc = 0.0;
      for (var i = li; i < V; i += WG) {
        let s = scores[base + i];
        if (orderKey(s) >= lo) { acc += exp(s - m); }
      }
      let mass = sumF(li, acc);
      if (mass >= need) { tp = cand; }
    }
  }
  let keyMin = max(tk, tp);
  let minP = p.minP;

  // 6. Draw: thread li owns ids [lo, hi); chunk sums, serial scan by thread 0, owner walks its chunk.
  let chunk = (V + WG - 1u) / WG;
  let lo = min(li * chunk, V);
  let hi = min(lo + chunk, V);
  var S = 0.0;
  var lastKept = 0xffffffffu;
  for (var i = lo; i < hi; i++) {
    let s = scores[base + i];
    let e = exp(s - m);
    if (orderKey(s) >= keyMin && e >= minP && e > 0.0) { S += e; lastKept = i; }
  }
  redF[li] = S;
  if (li == 0u) { picked = amax; }
  workgroupBarrier();
  if (li == 0u) {
    var acc = 0.0;
    var last = 0u;
    for (var t = 0u; t < WG; t++) {
      prefix[t] = acc;
      let st = redF[t];
      if (st > 0.0) { last = t; }
      acc += st;
    }
    prefix[WG] = acc;
    lastOwner = last;
  }
  workgroupBarrier();
  let u = uniform01(p.seed, p.step, row) * prefix[WG];
  let p0 = prefix[li];
  if (S > 0.0 && u >= p0 && (u < prefix[li + 1u] || li == lastOwner)) {
    var acc = p0;
    var found = lastKept;
    for (var i = lo; i < hi; i++) {
      let s = scores[base + i];
      let e = exp(s - m);
      if (orderKey(s) >= keyMin && e >= minP && e > 0.0) {
        acc += e;
        if (u < acc) { found = i; break; }
      }
    }
    picked = found;
  }
  workgroupBarrier();
  if (li == 0u) { tokens[row] = picked; }
}
`;
}

/** Sampling parameters, as in transformers' GenerationConfig. Omitted fields keep their current value. */
export interface SamplingParams {
  /** Divides the logits; ≤ 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (ties with the k-th kept); 0 disables. Default 0. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 disables. Default 1. */
  topP?: number;
  /** Keep tokens with prob ≥ minP · max prob; 0 disables. Default 0. */
  minP?: number;
  /** HF repetition_penalty (> 0); 1 disables. Default 1. */
  repetitionPenalty?: number;
  /** u32 seed of the counter-based RNG. Default 0. */
  seed?: number;
  /** u32 step counter (e.g. the decode position); each (seed, step, row) is an independent draw. Default 0. */
  step?: number;
  /** Argmax of the penalised logits instead of sampling. Default false. */
  greedy?: boolean;
  /** Ids (at most 8, e.g. the EOS ids) never drawn while `step` < `suppressSteps` (min_new_tokens). Default none. */
  suppressIds?: readonly number[];
  /** Steps during which `suppressIds` are suppressed. Default 0. */
  suppressSteps?: number;
}

/** Most ids `suppressIds` takes (they live in the uniform). */
export const MAX_SUPPRESS_IDS = 8;

export interface SamplingHistory {
  /** (rows, stride) u32 previous token ids per row. */
  ids: GPUBuffer;
  /** (rows) u32: how many of each row's ids are valid (clamped to stride). */
  counts: GPUBuffer;
  /** Ids slots per row (≥ 1). */
  stride: number;
}

export interface SamplingArgs {
  /** (rows, vocab) f32 logits; not modified. */
  logits: GPUBuffer;
  /** (rows) u32 output: one token id per row. */
  tokens: GPUBuffer;
  rows: number;
  vocab: number;
  /** Previous token ids for the repetition penalty. */
  history?: SamplingHistory;
  /** (rows, vocab) f32 scratch receiving the processed logits; allocated and owned by the dispatch if omitted. */
  scores?: GPUBuffer;
  params?: SamplingParams;
  /** What this sampler is, for the dispatch ledger and error messages. */
  label?: string;
}

export interface SamplingDispatch extends KernelDispatch {
  /** The parameters the uniform buffer currently holds. */
  readonly params: Readonly<Required<SamplingParams>>;
  /** Validates and writes new parameters (merged over the current ones) with `writeBuffer`; no rebuild. */
  update(params: SamplingParams): void;
  /** `update({ step })` for a decode loop: writes the one word and allocates nothing. */
  setStep(step: number): void;
}

export const DEFAULT_SAMPLING_PARAMS: Readonly<Required<SamplingParams>> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  seed: 0,
  step: 0,
  greedy: false,
  suppressIds: Object.freeze([]) as readonly number[],
  suppressSteps: 0,
});

function mergeParams(base: Readonly<Required<SamplingParams>>, next: SamplingParams): Required<SamplingParams> {
  const out: Required<SamplingParams> = { ...base };
  for (const [k, v] of Object.entries(next)) {
    if (v !== undefined && k in out) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

function checkParams(label: string, p: Required<SamplingParams>): void {
  const bad = (msg: string) => new GPUValidationError(`sampling "${label}": ${msg}`);
  if (!Number.isFinite(p.temperature) || p.temperature < 0) {
    throw bad(`temperature must be a finite number ≥ 0, got ${p.temperature}.`);
  }
  if (!Number.isInteger(p.topK) || p.topK < 0 || p.topK > 0xffffffff) {
    throw bad(`topK must be an integer ≥ 0, got ${p.topK}.`);
  }
  if (!(p.topP > 0 && p.topP <= 1)) throw bad(`topP must be in (0, 1], got ${p.topP}.`);
  if (!(p.minP >= 0 && p.minP <= 1)) throw bad(`minP must be in [0, 1], got ${p.minP}.`);
  if (!Number.isFinite(p.repetitionPenalty) || p.repetitionPenalty <= 0) {
    throw bad(`repetitionPenalty must be a finite number > 0, got ${p.repetitionPenalty}.`);
  }
  for (const [name, v] of [['seed', p.seed], ['step', p.step], ['suppressSteps', p.suppressSteps]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`${name} must be a u32 integer, got ${v}.`);
  }
  if (!Array.isArray(p.suppressIds) || p.suppressIds.length > MAX_SUPPRESS_IDS) {
    throw bad(`suppressIds must be a list of at most ${MAX_SUPPRESS_IDS} ids, got ${JSON.stringify(p.suppressIds)}.`);
  }
  for (const id of p.suppressIds) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw bad(`suppressIds must hold u32 integers, got ${id}.`);
  }
}

/** Prepares the sampler; record it with `recordDispatches`. Owns its uniform buffer (and scratch, if allocated). */
export function prepareSampling(ctx: GPUContext, args: SamplingArgs): SamplingDispatch {
  const { rows, vocab } = args;
  const label = args.label ?? `sampling ${rows}x${vocab}`;
  for (const [name, v] of [['rows', rows], ['vocab', vocab]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) {
      throw new GPUValidationError(`sampling "${label}": ${name} must be a positive integer, got ${v}.`);
    }
  }
  const stride = args.history?.stride ?? 0;
  if (args.history && (!Number.isInteger(stride) || stride < 1)) {
    throw new GPUValidationError(`sampling "${label}": history.stride must be a positive integer, got ${stride}.`);
  }
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (rows > maxGroups) {
    throw new GPUValidationError(
      `sampling "${label}": ${rows} rows need ${rows} workgroups, above this GPU's limit of ${maxGroups} per dimension.`,
    );
  }
  const params = mergeParams(DEFAULT_SAMPLING_PARAMS, args.params ?? {});
  checkParams(label, params);

  const owned: GPUBuffer[] = [];
  const scores = args.scores ?? createBuffer(ctx, `${label}/scores`, rows * vocab * 4, STORAGE);
  if (!args.scores) owned.push(scores);
  let histIds: GPUBuffer;
  let histCounts: GPUBuffer;
  if (args.history) {
    histIds = args.history.ids;
    histCounts = args.history.counts;
  } else {
    histIds = createBuffer(ctx, `${label}/no-history-ids`, 4, STORAGE);
    histCounts = createBuffer(ctx, `${label}/no-history-counts`, 4, STORAGE);
    owned.push(histIds, histCounts);
  }
  const bindings = [
    { name: 'logits', buffer: args.logits, bytes: rows * vocab * 4, shape: 'rows×vocab f32' },
    { name: 'history.ids', buffer: histIds, bytes: Math.max(4, rows * stride * 4), shape: 'rows×stride u32' },
    { name: 'history.counts', buffer: histCounts, bytes: args.history ? rows * 4 : 4, shape: 'rows u32' },
    { name: 'scores', buffer: scores, bytes: rows * vocab * 4, shape: 'rows×vocab f32' },
    { name: 'tokens', buffer: args.tokens, bytes: rows * 4, shape: 'rows u32' },
  ];
  const maxBinding = ctx.limits.maxStorageBufferBindingSize;
  try {
    for (const b of bindings) {
      if (b.buffer.size < b.bytes) {
        throw new GPUValidationError(
          `sampling "${label}": buffer ${b.name} ("${b.buffer.label}") holds ${b.buffer.size} bytes but ${b.shape} needs ${b.bytes}.`,
        );
      }
      if (b.bytes > maxBinding) {
        throw new GPUValidationError(
          `sampling "${label}": ${b.name} needs a ${b.bytes}-byte binding, above this GPU's maxStorageBufferBindingSize (${maxBinding}).`,
        );
      }
    }
  } catch (e) {
    for (const b of owned) b.destroy();
    throw e;
  }

  const wg = samplingWorkgroupSize(vocab);
  const kernel = samplingKey(wg);
  const pipeline = ctx.pipelines.get(kernel, () => samplingSource(wg));
  const { bindGroup, uniform } = bindWithUniform(ctx, pipeline, label, bindings, 96);
  owned.push(uniform);
  const bytes = new ArrayBuffer(96);
  const u32 = new Uint32Array(bytes);
  const f32 = new Float32Array(bytes);
  const write = (q: Required<SamplingParams>) => {
    u32[0] = vocab;
    u32[1] = rows;
    u32[2] = stride;
    u32[3] = q.greedy ? 1 : 0;
    f32[4] = q.temperature;
    u32[5] = q.topK;
    f32[6] = q.topP;
    f32[7] = q.minP;
    f32[8] = q.repetitionPenalty;
    u32[9] = q.seed;
    u32[10] = q.step;
    u32[11] = q.suppressSteps;
    u32[12] = q.suppressIds.length;
    u32.fill(0, 13, 24);
    u32.set(q.suppressIds, 16);
    writeBuffer(ctx, uniform, u32);
  };
  write(params);
  let current: Readonly<Required<SamplingParams>> = Object.freeze({ ...params });
  let stepNow = params.step; // setStep changes it without rebuilding `current`
  return {
    kernel,
    label,
    pipeline,
    bindGroup,
    workgroups: [rows, 1, 1],
    owned,
    get params() {
      if (current.step !== stepNow) current = Object.freeze({ ...current, step: stepNow });
      return current;
    },
    update(next: SamplingParams) {
      const merged = mergeParams({ ...current, step: stepNow }, next);
      checkParams(label, merged);
      write(merged);
      current = Object.freeze(merged);
      stepNow = merged.step;
    },
    setStep(step: number) {
      if (!Number.isInteger(step) || step < 0 || step > 0xffffffff) {
        throw new GPUValidationError(`sampling "${label}": step must be a u32 integer, got ${step}.`);
      }
      u32[10] = step;
      ctx.device.queue.writeBuffer(uniform, 40, u32, 10, 1);
      stepNow = step;
    },
  };
}
