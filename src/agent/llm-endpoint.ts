// Whether the language model can be talked to, said in one line: the console checks before it greets anyone
// (an operator with a wrong OPENAI_BASE_URL reads the URL and the cause, not a wall of retries and raw API
// error JSON), and turns a model failure in the middle of a conversation into the same kind of line.
import type { Config } from '../shared/config.ts';
import { redactUrl } from '../shared/logger.ts';
import { networkCause } from './network-cause.ts';

const OPENAI_URL = 'https://api.openai.com/v1';

export class LlmUnavailableError extends Error {
  override name = 'LlmUnavailableError';
}

export function llmBaseUrl(config: Pick<Config, 'OPENAI_BASE_URL'>): string {
  return redactUrl(config.OPENAI_BASE_URL ?? OPENAI_URL).replace(/\/+$/, '');
}

function refusedKey(base: string, status: number): string {
  return `the language model at ${base} refused the API key (HTTP ${status}): check OPENAI_API_KEY`;
}

/**
 * Asks the endpoint for its models (what OpenAI-compatible servers answer without spending tokens). Unreachable
 * or refusing the key: LlmUnavailableError with the one line to show. Any other answer (even a 404 from a
 * server without that route) means something is listening there.
 */
export async function checkLlmEndpoint(
  config: Pick<Config, 'OPENAI_BASE_URL' | 'OPENAI_API_KEY'>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const base = llmBaseUrl(config);
  let response: Response;
  try {
    response = await fetch(`${(config.OPENAI_BASE_URL ?? OPENAI_URL).replace(/\/+$/, '')}/models`, {
      headers: config.OPENAI_API_KEY ? { authorization: `Bearer ${config.OPENAI_API_KEY}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new LlmUnavailableError(`cannot reach the language model at ${base}: ${networkCause(error, timeoutMs)}`);
  }
  await response.body?.cancel().catch(() => {});
  if (response.status === 401 || response.status === 403) throw new LlmUnavailableError(refusedKey(base, response.status));
}

/**
 * A model failure reported by the agent framework (its `error` event: `{ error: APIStatusError-like,
 * recoverable }`) as one line: the status only, never the API's error body.
 */
export function describeLlmFailure(failure: unknown, config: Pick<Config, 'OPENAI_BASE_URL'>): string {
  const base = llmBaseUrl(config);
  const inner = (failure as { error?: unknown } | null)?.error ?? failure;
  const status = (inner as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status !== 'number' || status < 0) return `cannot reach the language model at ${base} (no answer after retries)`;
  if (status === 401 || status === 403) return refusedKey(base, status);
  if (status === 429) return `the language model at ${base} is rate limiting or out of quota (HTTP 429)`;
  if (status === 404) return `the language model at ${base} does not know this model or route (HTTP 404): check OPENAI_MODEL and OPENAI_BASE_URL`;
  return `the language model at ${base} failed (HTTP ${status})`;
}
