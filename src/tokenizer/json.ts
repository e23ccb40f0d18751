/**
 * Field readers for tokenizer.json. Every failure is a TokenizerError that names the field by its JSON path
 * (e.g. `tokenizer.json: pre_tokenizer.pretokenizers[1].pattern.Regex`), so a malformed file says where it is wrong.
 */
import { TokenizerError } from '../errors.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function fail(path: string, problem: string): never {
  throw new TokenizerError(`tokenizer.json: ${path} ${problem}`);
}

export function obj(value: unknown, path: string): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, `must be an object, got ${describe(value)}`);
  return value as JsonObject;
}

export function arr(value: unknown, path: string): Json[] {
  if (!Array.isArray(value)) fail(path, `must be an array, got ${describe(value)}`);
  return value;
}

export function str(o: JsonObject, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== 'string') fail(`${path}.${key}`, `must be a string, got ${describe(v)}`);
  return v;
}

export function optStr(o: JsonObject, key: string, path: string, fallback: string | null = null): string | null {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') fail(`${path}.${key}`, `must be a string or null, got ${describe(v)}`);
  return v;
}

export function bool(o: JsonObject, key: string, path: string, fallback?: boolean): boolean {
  const v = o[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'boolean') fail(`${path}.${key}`, `must be true or false, got ${describe(v)}`);
  return v;
}

export function num(o: JsonObject, key: string, path: string, fallback?: number): number {
  const v = o[key];
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${path}.${key}`, `must be a number, got ${describe(v)}`);
  return v;
}

export function int(o: JsonObject, key: string, path: string, fallback?: number): number {
  const v = num(o, key, path, fallback);
  if (!Number.isInteger(v) || v < 0) fail(`${path}.${key}`, `must be a non-negative integer, got ${v}`);
  return v;
}

/** The `type` field of a component, checked against the known names. */
export function typeOf(o: JsonObject, path: string, known: readonly string[], what: string): string {
  const t = o.type;
  if (typeof t !== 'string') fail(`${path}.type`, `must name the ${what} type, got ${describe(t)}`);
  if (!known.includes(t)) fail(`${path}.type`, `"${t}" is not a supported ${what} (supported: ${known.join(', ')})`);
  return t;
}

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}
