/**
 * A plain CPU tensor, as transformers.js returns them: a typed array in row-major order plus its dims. Used for
 * what crosses from the GPU to the caller (logits of a forward call); token ids travel as number[][].
 */
export type TensorType = 'float32' | 'int32' | 'uint32';
type TensorData<T extends TensorType> = T extends 'float32' ? Float32Array : T extends 'int32' ? Int32Array : Uint32Array;

export class Tensor<T extends TensorType = TensorType> {
  readonly type: T;
  readonly data: TensorData<T>;
  readonly dims: readonly number[];

  constructor(type: T, data: TensorData<T>, dims: readonly number[]) {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) {
      throw new RangeError(`Tensor of dims [${dims.join(', ')}] needs ${size} elements, got ${data.length}.`);
    }
    this.type = type;
    this.data = data;
    this.dims = Object.freeze([...dims]);
  }

  get size(): number {
    return this.data.length;
  }

  /** The row-major element offset of an index (one entry per dim). */
  offset(...index: number[]): number {
    let off = 0;
    for (let i = 0; i < this.dims.length; i++) off = off * this.dims[i]! + (index[i] ?? 0);
    return off;
  }

  /** A copy of the trailing-dim row at `index` (all dims but the last), e.g. `logits.row(0, 5)` → vocab logits. */
  row(...index: number[]): TensorData<T> {
    const n = this.dims[this.dims.length - 1] ?? 1;
    const start = this.offset(...index, 0);
    return this.data.slice(start, start + n) as TensorData<T>;
  }

  /** Nested arrays, as `tensor.tolist()` in PyTorch. */
  tolist(): unknown[] {
    const build = (dim: number, off: number): unknown[] => {
      const n = this.dims[dim]!;
      if (dim === this.dims.length - 1) return Array.from(this.data.subarray(off, off + n));
      const stride = this.dims.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * stride));
    };
    return this.dims.length === 0 ? [this.data[0]] : build(0, 0);
  }
}
