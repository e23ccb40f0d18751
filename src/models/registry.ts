/**
 * `config.model_type` → the family that implements it. Every type `normalizeConfig` accepts is listed here; a type
 * whose family is not built yet is a clear ConfigError rather than a wrong forward pass.
 */
import { ConfigError } from '../errors.js';
import { SUPPORTED_MODEL_TYPES } from './config.js';
import type { ModelFamily } from './family.js';
import { gemmaFamily } from './gemma.js';
import { llamaFamily } from './llama.js';
import { phi3Family } from './phi3.js';

const FAMILIES: readonly ModelFamily[] = [llamaFamily, gemmaFamily, phi3Family];

const BY_TYPE = new Map<string, ModelFamily>();
for (const f of FAMILIES) for (const t of f.modelTypes) BY_TYPE.set(t, f);

/** The model types that load and run today. */
export const RUNNABLE_MODEL_TYPES: readonly string[] = [...BY_TYPE.keys()];

export function familyFor(modelType: string, file = 'config.json'): ModelFamily {
  const family = BY_TYPE.get(modelType);
  if (family) return family;
  if (SUPPORTED_MODEL_TYPES.includes(modelType)) {
    throw new ConfigError(
      `${file}: model_type "${modelType}" is recognised but its forward pass is not available yet; these run today: ${RUNNABLE_MODEL_TYPES.join(', ')}.`,
    );
  }
  throw new ConfigError(`${file}: unsupported model_type "${modelType}"; supported: ${RUNNABLE_MODEL_TYPES.join(', ')}.`);
}
