// The hf-tiny goldens as GPU tests read them in Chromium and in Node: fetched from the fixture server that
// tests/gpu/fault-server.setup.ts starts for both projects.
export interface GoldenPrompt {
  name: string;
  kind: string;
  input_ids: number[];
  logits_positions: number[];
  logits: number[][];
  argmax: number[];
  greedy: { new_tokens: number[]; new_tokens_no_cache: number[]; stopped_on_eos: boolean };
}

export interface GoldenBatchRow {
  prompt: string;
  pad_count: number;
  logits_positions: number[];
  logits: number[][];
  greedy_new_tokens: number[];
}

export interface Golden {
  case: string;
  config: Record<string, unknown>;
  generation_config: Record<string, unknown>;
  generate_kwargs: { max_new_tokens: number; pad_token_id: number; eos_token_id: number[] };
  prompts: GoldenPrompt[];
  batch: { input_ids: number[][]; attention_mask: number[][]; position_ids: number[][]; rows: GoldenBatchRow[] } | null;
  chat: { input_ids: number[]; last_logits: number[]; greedy_new_tokens: number[] } | null;
}

export async function fetchGolden(server: string, name: string): Promise<Golden> {
  const response = await fetch(`${server}/${name}/golden.json`);
  if (!response.ok) throw new Error(`golden.json of ${name}: HTTP ${response.status}`);
  return (await response.json()) as Golden;
}

/** The README's bound for a correct f32 implementation: |ours − golden| ≤ 2e-4 + 1e-5·|golden|. */
export function logitsClose(ours: ArrayLike<number>, golden: ArrayLike<number>): { ok: boolean; worst: number; at: number } {
  let worst = 0;
  let at = -1;
  let ok = ours.length === golden.length;
  for (let i = 0; i < golden.length; i++) {
    const g = golden[i]!;
    const err = Math.abs(ours[i]! - g);
    const excess = err - (2e-4 + 1e-5 * Math.abs(g));
    if (!(excess <= 0)) ok = false;
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  return { ok, worst, at };
}

/** New tokens cut after the first EOS (inclusive), as the goldens store them. */
export function cutAfterEos(tokens: readonly number[], eos: readonly number[]): number[] {
  const i = tokens.findIndex((t) => eos.includes(t));
  return i < 0 ? [...tokens] : tokens.slice(0, i + 1);
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}
