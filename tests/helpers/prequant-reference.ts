// CPU packers for pre-quantized 4-bit checkpoints, written from the published packing code (AutoGPTQ's
// QuantLinear.pack, AutoAWQ's WQLinear_GEMM.from_linear) and, independently, for our q4 layout (kernels/quant.ts),
// so the GPU repack can be checked word for word.
import { rng } from './random.js';

export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

/** Integer q (N×K, 0…15), zero points z (N×blocks) and f16 scale bits (N×blocks) of a 4-bit Linear. */
export interface Prequant {
  N: number;
  K: number;
  G: number;
  blocks: number;
  q: Uint8Array;
  z: Uint8Array;
  s: Uint16Array;
}

export function randomPrequant(N: number, K: number, G: number, seed: number, zMin = 0): Prequant {
  const r = rng(seed);
  const blocks = Math.ceil(K / G);
  const q = new Uint8Array(N * K).map(() => Math.floor(r() * 16));
  const z = new Uint8Array(N * blocks).map(() => zMin + Math.floor(r() * (16 - zMin)));
  // Normal f16 values of both signs with random mantissas: sign | exponent 5…20 | mantissa.
  const s = new Uint16Array(N * blocks).map(() => ((r() < 0.5 ? 1 : 0) << 15) | ((5 + Math.floor(r() * 16)) << 10) | Math.floor(r() * 1024));
  return { N, K, G, blocks, q, z, s };
}

/** AutoGPTQ: qweight int32 [K/8, N] packed along K; qzeros [blocks, N/8] along N (stored z − 1 in v1); scales [blocks, N]. */
export function packGptq(p: Prequant, v1: boolean): { qweight: Int32Array; qzeros: Int32Array; scales: Uint16Array; g_idx: Int32Array } {
  const { N, K, G, blocks } = p;
  const qweight = new Int32Array((K / 8) * N);
  for (let r = 0; r < K / 8; r++) {
    for (let n = 0; n < N; n++) {
      let w = 0;
      for (let j = 0; j < 8; j++) w |= p.q[n * K + 8 * r + j]! << (4 * j);
      qweight[r * N + n] = w;
    }
  }
  const qzeros = new Int32Array(blocks * (N / 8));
  for (let b = 0; b < blocks; b++) {
    for (let c = 0; c < N / 8; c++) {
      let w = 0;
      for (let j = 0; j < 8; j++) w |= ((p.z[(8 * c + j) * blocks + b]! - (v1 ? 1 : 0)) & 15) << (4 * j);
      qzeros[b * (N / 8) + c] = w;
    }
  }
  const scales = transposedScales(p);
  const g_idx = new Int32Array(K).map((_, k) => Math.floor(k / G));
  return { qweight, qzeros, scales, g_idx };
}

/** AutoAWQ GEMM: qweight int32 [K, N/8] and qzeros [blocks, N/8] packed along N in AWQ_ORDER; scales [blocks, N]. */
export function packAwq(p: Prequant): { qweight: Int32Array; qzeros: Int32Array; scales: Uint16Array } {
  const { N, K, blocks } = p;
  const qweight = new Int32Array(K * (N / 8));
  for (let k = 0; k < K; k++) {
    for (let c = 0; c < N / 8; c++) {
      let w = 0;
      for (let i = 0; i < 8; i++) w |= p.q[(8 * c + AWQ_ORDER[i]!) * K + k]! << (4 * i);
      qweight[k * (N / 8) + c] = w;
    }
  }
  const qzeros = new Int32Array(blocks * (N / 8));
  for (let b = 0; b < blocks; b++) {
    for (let c = 0; c < N / 8; c++) {
      let w = 0;
      for (let i = 0; i < 8; i++) w |= p.z[(8 * c + AWQ_ORDER[i]!) * blocks + b]! << (4 * i);
      qzeros[b * (N / 8) + c] = w;
    }
  }
  return { qweight, qzeros, scales: transposedScales(p) };
}

function transposedScales(p: Prequant): Uint16Array {
  const out = new Uint16Array(p.blocks * p.N);
  for (let n = 0; n < p.N; n++) for (let b = 0; b < p.blocks; b++) out[b * p.N + n] = p.s[n * p.blocks + b]!;
  return out;
}

/**
 * Our q4 buffers for rows [row0, row0 + rows) of `p`, byte by byte from the format's description (kernels/quant.ts):
 * q [rows][blocks][G/2] bytes low nibble first, padding elements = the group's zero; scales f16 (rows, blocks);
 * zeros [rows][ceil(blocks/2)] bytes low nibble first. Each rounded up to whole u32 words.
 */
export function ourQ4(p: Prequant, row0 = 0, rows = p.N): { q: Uint32Array; scales: Uint32Array; zeros: Uint32Array } {
  const { K, G, blocks } = p;
  const zb = Math.ceil(blocks / 2);
  const q = new Uint8Array(rows * blocks * (G / 2));
  const s = new Uint16Array(Math.ceil((rows * blocks) / 2) * 2);
  const z = new Uint8Array(Math.ceil((rows * zb) / 4) * 4);
  for (let r = 0; r < rows; r++) {
    const n = row0 + r;
    for (let b = 0; b < blocks; b++) {
      const zero = p.z[n * blocks + b]!;
      for (let j = 0; j < G; j++) {
        const k = b * G + j;
        const v = k < K ? p.q[n * K + k]! : zero;
        q[(r * blocks + b) * (G / 2) + (j >> 1)]! |= v << ((j & 1) * 4);
      }
      s[r * blocks + b] = p.s[n * blocks + b]!;
      z[r * zb + (b >> 1)]! |= zero << ((b & 1) * 4);
    }
  }
  return { q: new Uint32Array(q.buffer), scales: new Uint32Array(s.buffer), zeros: new Uint32Array(z.buffer) };
}
