import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256 } from '../../../src/hub/sha256.js';
import { rng } from '../../helpers/random.js';

const reference = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('incremental SHA-256 against node:crypto', () => {
  it('known vectors', () => {
    expect(new Sha256().hex()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(new Sha256().update(new TextEncoder().encode('abc')).hex()).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('every length 0..300 and random chunkings of larger inputs', () => {
    const r = rng(7);
    for (let n = 0; n <= 300; n++) {
      const data = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
      expect(new Sha256().update(data).hex(), `length ${n}`).toBe(reference(data));
    }
    for (const n of [4097, 65536, 1_000_003]) {
      const data = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
      const h = new Sha256();
      for (let i = 0; i < n; ) {
        const step = 1 + Math.floor(r() * 9000);
        h.update(data.subarray(i, i + step));
        i += step;
      }
      expect(h.hex(), `length ${n}`).toBe(reference(data));
    }
  });
});
