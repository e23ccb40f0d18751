/** `AutoConfig.from_pretrained(id)`: a model's `config.json`, checked, with its config class's defaults filled in. */
import { ConfigError } from '../errors.js';
import { readModelFileText, type ModelFileOptions } from '../hub/model-files.js';
import { normalizeConfig, type DecoderConfig } from '../models/config.js';

/**
 * The parsed `config.json` with the defaults of the Python config class filled in for absent fields (as the
 * attributes of a transformers `PretrainedConfig` would read). `model_type` is always present.
 */
export interface PretrainedConfig {
  model_type: string;
  [key: string]: unknown;
}

/** Parses and validates config.json text; errors name `file` and the model. */
export function parseModelConfig(text: string, model = '', file = 'config.json'): DecoderConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    const of = model ? ` of "${model}"` : '';
    throw new ConfigError(`${file}${of} is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  return normalizeConfig(parsed, model ? `${file} of "${model}"` : file);
}

export class AutoConfig {
  static async from_pretrained(model: string, options: ModelFileOptions = {}): Promise<PretrainedConfig> {
    const text = await readModelFileText(model, 'config.json', options);
    return parseModelConfig(text, model).raw as PretrainedConfig;
  }
}
