import { describe, expect, it } from 'vitest';
import * as webslm from '../../src/index.js';

const ERROR_NAMES = [
  'GPUUnavailableError',
  'DeviceLostError',
  'OutOfMemoryError',
  'GPUValidationError',
  'ConfigError',
  'SafetensorsError',
  'TokenizerError',
  'DownloadError',
  'QuotaError',
  'AbortError',
] as const;

describe('typed errors', () => {
  for (const name of ERROR_NAMES) {
    it(`${name} is a WebSLMError with its own name`, () => {
      const Ctor = webslm[name] as new (m: string) => Error;
      const e = new Ctor('boom');
      expect(e).toBeInstanceOf(webslm.WebSLMError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(name);
      expect(e.message).toBe('boom');
    });
  }

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new webslm.DownloadError('x', { cause }).cause).toBe(cause);
  });
});
