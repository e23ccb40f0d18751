/**
 * Reading a safetensors file as it arrives, chunk by chunk: the header is parsed as soon as its bytes are in, then
 * each tensor is handed out as soon as its last byte is. Only the header and the tensor being filled are held, never
 * the whole file; each tensor gets one buffer of exactly its size. Being an async generator, the reader pulls the
 * next chunk only when the consumer asks for the next tensor, which gives back-pressure for free.
 */
import { SafetensorsError } from '../errors.js';
import { parseSafetensorsHeader, readHeaderLength, type SafetensorsDtype, type SafetensorsHeader } from './safetensors.js';

export interface StreamedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The tensor's bytes, a copy owned by the consumer. */
  bytes: Uint8Array;
}

/**
 * Yields the tensors of a safetensors file of `fileSize` bytes from its bytes in any chunking, in file order. A
 * stream that ends early or runs past `fileSize` is a SafetensorsError naming `file`. `onHeader`, when given, sees
 * the parsed header before the first tensor.
 */
export async function* readTensors(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fileSize: number,
  file: string,
  onHeader?: (header: SafetensorsHeader) => void,
): AsyncGenerator<StreamedTensor, void, undefined> {
  if (!Number.isSafeInteger(fileSize) || fileSize < 8) {
    throw new SafetensorsError(`${file}: file size ${fileSize} is too small or not an integer for a safetensors file`);
  }
  // Header stage: first the 8 length bytes, then a buffer of exactly 8 + header length.
  let head: Uint8Array = new Uint8Array(8);
  let headFill = 0;
  let header: SafetensorsHeader | null = null;
  // Tensor stage.
  let index = 0;
  let current: Uint8Array | null = null;
  let currentFill = 0;
  let received = 0;

  const startTensors = function* (): Generator<StreamedTensor> {
    // Zero-byte tensors are complete before any of their bytes arrive.
    while (header && index < header.tensors.length && header.tensors[index].byteLength === 0) {
      const t = header.tensors[index++];
      yield { name: t.name, dtype: t.dtype, shape: t.shape, bytes: new Uint8Array(0) };
    }
  };

  for await (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array)) {
      throw new SafetensorsError(`${file}: stream gave a chunk that is not a Uint8Array`);
    }
    received += chunk.length;
    if (received > fileSize) {
      throw new SafetensorsError(`${file}: stream holds more than the expected ${fileSize} bytes`);
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (header === null) {
        const take = Math.min(head.length - headFill, chunk.length - pos);
        head.set(chunk.subarray(pos, pos + take), headFill);
        headFill += take;
        pos += take;
        if (headFill === 8 && head.length === 8) {
          const length = readHeaderLength(head, file, fileSize);
          const grown = new Uint8Array(8 + length);
          grown.set(head);
          head = grown;
        } else if (headFill === head.length) {
          header = parseSafetensorsHeader(head, fileSize, file);
          head = new Uint8Array(0);
          onHeader?.(header);
          yield* startTensors();
        }
        continue;
      }
      // Every data byte belongs to exactly one tensor (the header check guarantees the tensors tile the data).
      if (current === null) {
        if (index >= header.tensors.length) throw new SafetensorsError(`${file}: stream holds bytes past the last tensor`);
        current = new Uint8Array(header.tensors[index].byteLength);
      }
      const take = Math.min(current.length - currentFill, chunk.length - pos);
      current.set(chunk.subarray(pos, pos + take), currentFill);
      currentFill += take;
      pos += take;
      if (currentFill === current.length) {
        const t = header.tensors[index++];
        const bytes = current;
        current = null;
        currentFill = 0;
        yield { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
        yield* startTensors();
      }
    }
  }

  if (received < fileSize) {
    const waiting = header === null ? 'the header' : index < header.tensors.length ? `tensor "${header.tensors[index].name}"` : 'the end';
    throw new SafetensorsError(`${file}: stream ended after ${received} of ${fileSize} bytes, in ${waiting}`);
  }
}
