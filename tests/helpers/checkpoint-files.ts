// Broken checkpoints for load tests: a fixture's real files fetched from the fixture server, edited (config fields,
// tensors dropped, reshaped or retyped), and handed to the loaders as `File`s. Runs in Node and in the browser.
import { parseSafetensorsHeader } from '../../src/hub/safetensors.js';
import { writeSafetensors, type TensorToWrite } from './safetensors-writer.js';

export interface Checkpoint {
  metadata?: Record<string, string>;
  tensors: TensorToWrite[];
}

/** Every tensor of a safetensors file, in file order, with a copy of its bytes (the header read by the loader's parser). */
export function readSafetensors(file: Uint8Array): Checkpoint {
  const header = parseSafetensorsHeader(file, file.length, 'model.safetensors');
  return {
    metadata: Object.keys(header.metadata).length > 0 ? header.metadata : undefined,
    tensors: header.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      bytes: file.slice(t.byteOffset, t.byteOffset + t.byteLength),
    })),
  };
}

/** The named files of a fixture case, fetched from the fixture server. */
export async function fetchCaseFiles(server: string, name: string, files: readonly string[]): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const file of files) {
    const res = await fetch(`${server}/${name}/${file}`);
    if (!res.ok) throw new Error(`${name}/${file}: HTTP ${res.status}`);
    out.set(file, new Uint8Array(await res.arrayBuffer()));
  }
  return out;
}

/** A copy of `files` with config.json edited. */
export function withConfig(files: ReadonlyMap<string, Uint8Array>, edit: (config: Record<string, unknown>) => void): Map<string, Uint8Array> {
  const config = JSON.parse(new TextDecoder().decode(files.get('config.json'))) as Record<string, unknown>;
  edit(config);
  const out = new Map(files);
  out.set('config.json', new TextEncoder().encode(JSON.stringify(config, null, 2)));
  return out;
}

/** A copy of `files` with the tensors of `model.safetensors` edited (return the new list, in file order). */
export function withTensors(
  files: ReadonlyMap<string, Uint8Array>,
  edit: (tensors: TensorToWrite[]) => TensorToWrite[],
  file = 'model.safetensors',
): Map<string, Uint8Array> {
  const ckpt = readSafetensors(files.get(file)!);
  const out = new Map(files);
  out.set(file, writeSafetensors(edit(ckpt.tensors), ckpt.metadata));
  return out;
}

/** Replaces the tensor called `name` by `replace(t)` (throws when there is none). */
export function mapTensor(tensors: TensorToWrite[], name: string, replace: (t: TensorToWrite) => TensorToWrite): TensorToWrite[] {
  if (!tensors.some((t) => t.name === name)) throw new Error(`no tensor ${name}`);
  return tensors.map((t) => (t.name === name ? replace(t) : t));
}

/** An F32 tensor's values as another dtype ('F64' or 'I32'), same shape. */
export function retypeF32(t: TensorToWrite, dtype: 'F64' | 'I32'): TensorToWrite {
  if (t.dtype !== 'F32') throw new Error(`${t.name} is ${t.dtype}, not F32`);
  const src = new Float32Array(t.bytes.slice().buffer);
  const dst = dtype === 'F64' ? new Float64Array(src) : Int32Array.from(src, (x) => Math.round(x * 1000));
  return { ...t, dtype, bytes: new Uint8Array(dst.buffer) };
}

/** The files as a picked folder (`File`s with a `webkitRelativePath` under `folder/`), for `modelFromFiles`. */
export function asFiles(files: ReadonlyMap<string, Uint8Array>, folder = 'model'): File[] {
  return [...files].map(([name, bytes]) => {
    const file = new File([bytes.slice()], name);
    Object.defineProperty(file, 'webkitRelativePath', { value: `${folder}/${name}` });
    return file;
  });
}
