/**
 * Pre-quantized 4-bit checkpoints (AWQ, GPTQ) repacked on the GPU into our q4 format (quant.ts), so they run on
 * the same fused dequant kernels as weights quantized on load. Both formats store, for a Linear of N outputs and
 * K inputs with groups of G inputs, w[n, k] = (q − z)·s with 4-bit q and z and an f16 s per (group, output); they
 * differ from ours (and from each other) only in where the nibbles sit:
 *
 *   GPTQ (AutoGPTQ `QuantLinear.pack`, GPTQModel): qweight int32 [K/8, N], packed along K: nibble j of
 *     qweight[r, n] is q[n, 8r + j]. That is our q word (n, r) already (ours: row n, word r, element 8r + j in
 *     nibble j), transposed. qzeros int32 [ceil(K/G), N/8], packed along N in order: nibble j of qzeros[b, c] is
 *     the zero of output 8c + j, stored minus one in the original ("gptq", v1) format and as is in "gptq_v2".
 *     scales f16 [ceil(K/G), N]. g_idx int32 [K] (checked by the loader to be k / G: no act-order).
 *   AWQ (AutoAWQ `WQLinear_GEMM`): qweight int32 [K, N/8], packed along N in the interleaved order
 *     [0, 2, 4, 6, 1, 3, 5, 7]: nibble i of qweight[k, c] is q[8c + ORDER[i], k], so output 8c + j sits in nibble
 *     INV[j] = [0, 4, 1, 5, 2, 6, 3, 7][j]. qzeros int32 [K/G, N/8] with the same interleave, no offset.
 *     scales f16 [K/G, N].
 *
 * Two kernels, because a slot can stack several checkpoint Linears by rows (gate and up), arriving one at a time,
 * and a slot above the binding limit is split into chunks of any row count: a tensor's first row can then land
 * at any row of a chunk, where its f16 scales (two per word) and nibble zero points (eight per word) would share
 * u32 words with the previous tensor's:
 *   `prepareRepack` (one per tensor and row chunk): writes that tensor's q words straight into the chunk (a row is
 *     whole words), and its scales and zeros one u32 per (row, group) into per-chunk staging arrays;
 *   `preparePackGroupParams` (one per chunk, once all its rows are in): packs those arrays into our scales (two f16
 *     per word) and zeros (two nibbles per byte, each row starting on a byte). No two invocations write one word.
 * Elements past K in our padded last group get q = z (dequantise to 0), as the quantizer writes them.
 */
import { GPUValidationError } from '../errors.js';
import type { GPUContext } from '../runtime/gpu-context.js';
import { bindWithUniform, checkBindings, grid2d, type KernelDispatch } from './dispatch.js';
import { quantizedBytes, type QuantGroup } from './quant.js';

export type PrequantizedMethod = 'awq' | 'gptq';

const WG = 64;

export function repackSource(method: PrequantizedMethod, G: QuantGroup): string {
  const zeroNibble =
    method === 'gptq'
      ? 'let shift = 4u * (n % 8u);'
      : 'let j = n % 8u;\n  let shift = 4u * (j / 2u + 4u * (j % 2u)); // AWQ interleave: output j of 8 in nibble [0,4,1,5,2,6,3,7][j]';
  const qWord =
    method === 'gptq'
      ? /* wgsl */ `
  if (8u * w + 8u <= dims.K) { return qweight[w * dims.partRows + n]; } // K is a multiple of 8: whole words or none
  return padding_word(n, w);`
      : /* wgsl */ `
  let j = n % 8u;
  let shift = 4u * (j / 2u + 4u * (j % 2u));
  var word = 0u;
  for (var i = 0u; i < 8u; i++) {
    let k = 8u * w + i;
    var v: u32;
    if (k < dims.K) { v = (qweight[k * (dims.partRows / 8u) + n / 8u] >> shift) & 15u; } else { v = zero_of(n, k / G); }
    word = word | (v << (4u * i));
  }
  return word;`;
  return /* wgsl */ `
struct Dims {
  partRows: u32, K: u32, blocks: u32, rowWords: u32,
  srcRow0: u32, rows: u32, dstRow0: u32, zeroOffset: u32,
  qWords: u32, total: u32, rowStride: u32, _p0: u32,
}

@group(0) @binding(0) var<storage, read> qweight: array<u32>;
@group(0) @binding(1) var<storage, read> qzeros: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;
@group(0) @binding(4) var<storage, read_write> scaleEl: array<u32>;
@group(0) @binding(5) var<storage, read_write> zeroEl: array<u32>;
@group(0) @binding(6) var<uniform> dims: Dims;

const G = ${G}u;

// Zero point of checkpoint output n (a row of the tensor) in group b.
fn zero_of(n: u32, b: u32) -> u32 {
  ${zeroNibble}
  return (((qzeros[b * (dims.partRows / 8u) + n / 8u] >> shift) & 15u) + dims.zeroOffset) & 15u;
}

fn scale_bits(n: u32, b: u32) -> u32 {
  let e = b * dims.partRows + n;
  return (scales[e / 2u] >> (16u * (e % 2u))) & 0xffffu;
}

// A word of our row n lying wholly or partly past K: every element past K takes the group's zero point.
fn padding_word(n: u32, w: u32) -> u32 {
  var word = 0u;
  for (var i = 0u; i < 8u; i++) {
    word = word | (zero_of(n, (8u * w + i) / G) << (4u * i));
  }
  return word;
}

fn q_word(n: u32, w: u32) -> u32 {${qWord}
}

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * dims.rowStride + gid.x;
  if (i >= dims.total) { return; }
  if (i < dims.qWords) {
    let r = i / dims.rowWords;
    let w = i % dims.rowWords;
    q[(dims.dstRow0 + r) * dims.rowWords + w] = q_word(dims.srcRow0 + r, w);
    return;
  }
  let e = i - dims.qWords;
  let r = e / dims.blocks;
  let b = e % dims.blocks;
  let n = dims.srcRow0 + r;
  let dst = (dims.dstRow0 + r) * dims.blocks + b;
  scaleEl[dst] = scale_bits(n, b);
  zeroEl[dst] = zero_of(n, b);
}
`;
}

export interface RepackArgs {
  method: PrequantizedMethod;
  group: QuantGroup;
  /** The checkpoint tensor's outputs (N) and inputs (K). */
  partRows: number;
  K: number;
  /** 'gptq' v1 stores zero points minus one: 1; otherwise 0. */
  zeroOffset: 0 | 1;
  /** The checkpoint's tensors as uploaded (little-endian int32 / f16 bytes). */
  qweight: GPUBuffer;
  qzeros: GPUBuffer;
  scales: GPUBuffer;
  /** Tensor rows srcRow0 … srcRow0 + rows − 1 go to chunk rows dstRow0 … of a chunk of `chunkRows` rows. */
  srcRow0: number;
  rows: number;
  dstRow0: number;
  chunkRows: number;
  /** The chunk's q buffer (our q4 layout) and its staging arrays: one u32 per (chunk row, group). */
  q: GPUBuffer;
  scaleEl: GPUBuffer;
  zeroEl: GPUBuffer;
  label?: string;
}

/** Prepares the repack of (a row range of) one AWQ / GPTQ Linear into a q4 chunk; owns its uniform. */
export function prepareRepack(ctx: GPUContext, args: RepackArgs): KernelDispatch {
  const { method, group, partRows: N, K, srcRow0, rows, dstRow0, chunkRows } = args;
  const label = args.label ?? `repack ${method} ${N}x${K} g${group}`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`repack "${label}": ${msg}`);
  };
  if (method !== 'awq' && method !== 'gptq') fail(`method must be awq or gptq, got ${String(method)}.`);
  for (const [name, v] of [['partRows', N], ['K', K], ['rows', rows], ['chunkRows', chunkRows]] as const) {
    if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got ${v}.`);
  }
  if (N % 8 !== 0) fail(`N (${N}) must be a multiple of 8 (zero points are packed 8 outputs per int32).`);
  if (method === 'gptq' && K % 8 !== 0) fail(`K (${K}) must be a multiple of 8 (GPTQ packs 8 inputs per int32).`);
  if (srcRow0 < 0 || srcRow0 + rows > N) fail(`rows ${srcRow0}…${srcRow0 + rows} outside the tensor's ${N}.`);
  if (dstRow0 < 0 || dstRow0 + rows > chunkRows) fail(`rows ${dstRow0}…${dstRow0 + rows} outside the chunk's ${chunkRows}.`);
  const ours = quantizedBytes({ bits: 4, N: chunkRows, K, group });
  const blocks = ours.blocks;
  const bindings = [
    { name: 'qweight', buffer: args.qweight, bytes: (N * K) / 2, shape: `${method} qweight of ${N}×${K}` },
    { name: 'qzeros', buffer: args.qzeros, bytes: (blocks * N) / 2, shape: `${method} qzeros [${blocks}, ${N / 8}]` },
    { name: 'scales', buffer: args.scales, bytes: blocks * N * 2, shape: `f16 scales [${blocks}, ${N}]` },
    { name: 'q', buffer: args.q, bytes: ours.q, shape: `${chunkRows}×${K} q4 (group ${group})` },
    { name: 'scaleEl', buffer: args.scaleEl, bytes: chunkRows * blocks * 4, shape: `${chunkRows}×${blocks} u32` },
    { name: 'zeroEl', buffer: args.zeroEl, bytes: chunkRows * blocks * 4, shape: `${chunkRows}×${blocks} u32` },
  ];
  checkBindings(ctx, fail, bindings);
  const qWords = rows * ours.rowWords;
  const total = qWords + rows * blocks;
  const workgroups = grid2d(total, WG, ctx.limits.maxComputeWorkgroupsPerDimension);
  const key = `repack.${method}.g${group}.wg${WG}`;
  const pipeline = ctx.pipelines.get(key, () => repackSource(method, group));
  const uniform = new Uint32Array([N, K, blocks, ours.rowWords, srcRow0, rows, dstRow0, args.zeroOffset, qWords, total, workgroups[0] * WG, 0]);
  const { bindGroup, uniform: ub } = bindWithUniform(ctx, pipeline, label, bindings, uniform);
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [ub] };
}

export const PACK_GROUP_PARAMS_WGSL = /* wgsl */ `
struct Dims { rows: u32, blocks: u32, zb: u32, S: u32, Z: u32, rowStride: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> scaleEl: array<u32>;
@group(0) @binding(1) var<storage, read> zeroEl: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> zeros: array<u32>;
@group(0) @binding(4) var<uniform> dims: Dims;

@compute @workgroup_size(${WG}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.y * dims.rowStride + gid.x;
  let T = dims.rows * dims.blocks;
  if (i < dims.S) {
    var word = scaleEl[2u * i];
    if (2u * i + 1u < T) { word = word | (scaleEl[2u * i + 1u] << 16u); }
    scales[i] = word;
    return;
  }
  if (i >= dims.S + dims.Z) { return; }
  let j = i - dims.S;
  var word = 0u;
  for (var t = 0u; t < 4u; t++) {
    let byte = 4u * j + t;
    let row = byte / dims.zb;
    if (row >= dims.rows) { break; }
    let g = 2u * (byte % dims.zb);
    var v = zeroEl[row * dims.blocks + g];
    if (g + 1u < dims.blocks) { v = v | (zeroEl[row * dims.blocks + g + 1u] << 4u); }
    word = word | (v << (8u * t));
  }
  zeros[j] = word;
}
`;

export interface PackGroupParamsArgs {
  rows: number;
  K: number;
  group: QuantGroup;
  scaleEl: GPUBuffer;
  zeroEl: GPUBuffer;
  scales: GPUBuffer;
  zeros: GPUBuffer;
  label?: string;
}

/** Prepares the packing of a chunk's staged per-group scales and zero points into our q4 scales and zeros. */
export function preparePackGroupParams(ctx: GPUContext, args: PackGroupParamsArgs): KernelDispatch {
  const { rows, K, group } = args;
  const label = args.label ?? `pack scales/zeros ${rows}x${K} g${group}`;
  const fail = (msg: string): never => {
    throw new GPUValidationError(`pack "${label}": ${msg}`);
  };
  for (const [name, v] of [['rows', rows], ['K', K]] as const) {
    if (!Number.isInteger(v) || v < 1) fail(`${name} must be a positive integer, got ${v}.`);
  }
  const sizes = quantizedBytes({ bits: 4, N: rows, K, group });
  const zb = Math.ceil(sizes.blocks / 2);
  checkBindings(ctx, fail, [
    { name: 'scaleEl', buffer: args.scaleEl, bytes: rows * sizes.blocks * 4, shape: `${rows}×${sizes.blocks} u32` },
    { name: 'zeroEl', buffer: args.zeroEl, bytes: rows * sizes.blocks * 4, shape: `${rows}×${sizes.blocks} u32` },
    { name: 'scales', buffer: args.scales, bytes: sizes.scales, shape: `${rows}×${sizes.blocks} f16 scales` },
    { name: 'zeros', buffer: args.zeros, bytes: sizes.zeros, shape: `${rows}×${zb} bytes of zero points` },
  ]);
  const S = Math.ceil((rows * sizes.blocks) / 2);
  const Z = sizes.zeros / 4;
  const workgroups = grid2d(S + Z, WG, ctx.limits.maxComputeWorkgroupsPerDimension);
  const key = `pack-group-params.wg${WG}`;
  const pipeline = ctx.pipelines.get(key, () => PACK_GROUP_PARAMS_WGSL);
  const uniform = new Uint32Array([rows, sizes.blocks, zb, S, Z, workgroups[0] * WG, 0, 0]);
  const bindings = [
    { buffer: args.scaleEl, bytes: rows * sizes.blocks * 4 },
    { buffer: args.zeroEl, bytes: rows * sizes.blocks * 4 },
    { buffer: args.scales, bytes: sizes.scales },
    { buffer: args.zeros, bytes: sizes.zeros },
  ];
  const { bindGroup, uniform: ub } = bindWithUniform(ctx, pipeline, label, bindings, uniform);
  return { kernel: key, label, pipeline, bindGroup, workgroups, owned: [ub] };
}
