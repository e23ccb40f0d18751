/**
 * CPU references for the q4 / q8 block-quantised format (src/kernels/quant.ts), written from its spec for tests
 * only: a quantiser that follows onnxruntime's MLAS rules step by step in f32 (Math.fround after every operation;
 * a division of two f32 values done in float64 and rounded once is the correctly rounded f32 quotient), a
 * dequantiser, and a generator of one-node ONNX models holding a com.microsoft MatMulNBits.
 */
import { f16BitsToF32, f32ToF16Bits } from '../../src/kernels/weight-format.js';

export type Bits = 4 | 8;

const fr = Math.fround;

/** C's roundf: halves away from zero. */
export function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

export interface QuantizedRef {
  /** The three buffers, as the GPU writes them (u32 words, little-endian bytes). */
  q: Uint32Array;
  scales: Uint32Array;
  /** q4 only (empty for q8). */
  zeros: Uint32Array;
  blocks: number;
  /** Per group (n·blocks + b): the f32 scale before f16 rounding, the stored scale, the zero point. */
  s32: Float64Array;
  s: Float64Array;
  z: Uint8Array;
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Quantises `w` ((N, K) values as f32) by the rules in quant.ts. */
export function quantizeRef(w: Float32Array, N: number, K: number, bits: Bits, G: number): QuantizedRef {
  const blocks = Math.ceil(K / G);
  const zb = Math.ceil(blocks / 2);
  const qBytes = new Uint8Array(N * blocks * G * (bits / 8));
  const sBits = new Uint16Array(align4(N * blocks * 2) / 2);
  const zBytes = new Uint8Array(bits === 4 ? align4(N * zb) : 0);
  const s32 = new Float64Array(N * blocks);
  const s = new Float64Array(N * blocks);
  const z = new Uint8Array(N * blocks);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const g = n * blocks + b;
      const vals: number[] = [];
      for (let j = 0; j < G; j++) {
        const k = b * G + j;
        vals.push(k < K ? w[n * K + k] : 0);
      }
      let scale32: number;
      let zp = 0;
      if (bits === 4) {
        let lo = 0;
        let hi = 0;
        for (const v of vals) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        scale32 = fr(fr(hi - lo) / 15);
        let zf = lo;
        if (scale32 !== 0) zf = -fr(lo / scale32);
        zp = zf < 0 ? 0 : zf > 15 ? 15 : roundHalfAway(zf);
      } else {
        let a = 0;
        for (const v of vals) if (Math.abs(v) > a) a = Math.abs(v);
        scale32 = fr(a / 127);
      }
      const h = f32ToF16Bits(scale32);
      const sc = f16BitsToF32(h);
      const recip = sc !== 0 ? fr(1 / sc) : 0;
      sBits[g] = h;
      s32[g] = scale32;
      s[g] = sc;
      z[g] = zp;
      for (let j = 0; j < G; j++) {
        const v = vals[j];
        if (bits === 4) {
          const qv = Math.min(15, Math.max(0, roundHalfAway(fr(fr(v * recip) + zp))));
          qBytes[g * (G / 2) + (j >> 1)] |= qv << ((j & 1) * 4);
        } else {
          const qv = Math.min(127, Math.max(-127, roundHalfAway(fr(v * recip))));
          qBytes[g * G + j] = qv & 0xff;
        }
      }
      if (bits === 4) zBytes[n * zb + (b >> 1)] |= zp << ((b & 1) * 4);
    }
  }
  return {
    q: new Uint32Array(qBytes.buffer),
    scales: new Uint32Array(sBits.buffer),
    zeros: new Uint32Array(zBytes.buffer),
    blocks,
    s32,
    s,
    z,
  };
}

/** (N, K) weights (q − z)·s from the packed buffers (exact in f32). */
export function dequantizeRef(
  q: Uint32Array,
  scales: Uint32Array,
  zeros: Uint32Array,
  N: number,
  K: number,
  bits: Bits,
  G: number,
): Float32Array {
  const blocks = Math.ceil(K / G);
  const zb = Math.ceil(blocks / 2);
  const qb = new Uint8Array(q.buffer, q.byteOffset, q.byteLength);
  const sb = new Uint16Array(scales.buffer, scales.byteOffset, scales.byteLength >> 1);
  const zbytes = new Uint8Array(zeros.buffer, zeros.byteOffset, zeros.byteLength);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / G);
      const g = n * blocks + b;
      const sc = f16BitsToF32(sb[g]);
      let v: number;
      if (bits === 4) {
        const byte = qb[g * (G / 2) + ((k % G) >> 1)];
        const qv = (k & 1) === 1 ? byte >> 4 : byte & 15;
        const zbyte = zbytes[n * zb + (b >> 1)];
        const zp = (b & 1) === 1 ? zbyte >> 4 : zbyte & 15;
        v = (qv - zp) * sc;
      } else {
        const byte = qb[g * G + (k % G)];
        v = (byte >= 128 ? byte - 256 : byte) * sc;
      }
      out[n * K + k] = v;
    }
  }
  return out;
}

/** The f16 scales as f32 values [N·blocks] (MatMulNBits' `scales` input). */
export function scalesAsF32(scales: Uint32Array, count: number): Float32Array {
  const sb = new Uint16Array(scales.buffer, scales.byteOffset, scales.byteLength >> 1);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = f16BitsToF32(sb[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// A one-node ONNX model (protobuf written by hand): Y = MatMulNBits(A, B, scales[, zero_points]), every tensor a
// graph input so a test feeds its own packed bytes.

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}
const key = (field: number, wire: number): number[] => varint(field * 8 + wire);
const pbString = (field: number, s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...key(field, 2), ...varint(b.length), ...b];
};
const pbMessage = (field: number, bytes: number[]): number[] => [...key(field, 2), ...varint(bytes.length), ...bytes];
const pbInt = (field: number, v: number): number[] => [...key(field, 0), ...varint(v)];

const ONNX_FLOAT = 1;
const ONNX_UINT8 = 2;

function valueInfo(name: string, elemType: number, dims: number[]): number[] {
  const shape = dims.flatMap((d) => pbMessage(1, pbInt(1, d))); // TensorShapeProto.dim { dim_value }
  const tensorType = [...pbInt(1, elemType), ...pbMessage(2, shape)]; // TypeProto.Tensor
  return [...pbString(1, name), ...pbMessage(2, pbMessage(1, tensorType))]; // ValueInfoProto { name, type }
}

function intAttribute(name: string, v: number): number[] {
  return [...pbString(1, name), ...pbInt(3, v), ...pbInt(20, 2)]; // AttributeProto { name, i, type: INT }
}

export interface MatMulNBitsShape {
  M: number;
  N: number;
  K: number;
  bits: Bits;
  block: number;
  /** Whether the model takes a zero_points input (MatMulNBits' default without it: 2^(bits−1)). */
  zeroPoints: boolean;
}

/** Bytes of an ONNX model (IR 8, opset 17 + com.microsoft 1) with one MatMulNBits node. */
export function matmulNBitsModel(s: MatMulNBitsShape): Uint8Array {
  const blocks = Math.ceil(s.K / s.block);
  const blob = (s.block * s.bits) / 8;
  const zpBytes = s.N * Math.ceil((blocks * s.bits) / 8);
  const node = [
    ...pbString(1, 'A'),
    ...pbString(1, 'B'),
    ...pbString(1, 'scales'),
    ...(s.zeroPoints ? pbString(1, 'zero_points') : []),
    ...pbString(2, 'Y'),
    ...pbString(3, 'matmul_nbits'),
    ...pbString(4, 'MatMulNBits'),
    ...pbString(7, 'com.microsoft'),
    ...pbMessage(5, intAttribute('K', s.K)),
    ...pbMessage(5, intAttribute('N', s.N)),
    ...pbMessage(5, intAttribute('bits', s.bits)),
    ...pbMessage(5, intAttribute('block_size', s.block)),
  ];
  const graph = [
    ...pbMessage(1, node),
    ...pbString(2, 'matmul_nbits_test'),
    ...pbMessage(11, valueInfo('A', ONNX_FLOAT, [s.M, s.K])),
    ...pbMessage(11, valueInfo('B', ONNX_UINT8, [s.N, blocks, blob])),
    ...pbMessage(11, valueInfo('scales', ONNX_FLOAT, [s.N * blocks])),
    ...(s.zeroPoints ? pbMessage(11, valueInfo('zero_points', ONNX_UINT8, [zpBytes])) : []),
    ...pbMessage(12, valueInfo('Y', ONNX_FLOAT, [s.M, s.N])),
  ];
  const model = [
    ...pbInt(1, 8), // ir_version
    ...pbString(2, 'webslm-tests'),
    ...pbMessage(8, [...pbString(1, ''), ...pbInt(2, 17)]),
    ...pbMessage(8, [...pbString(1, 'com.microsoft'), ...pbInt(2, 1)]),
    ...pbMessage(7, graph),
  ];
  return new Uint8Array(model);
}
