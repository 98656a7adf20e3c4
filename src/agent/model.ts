// The agent's language model: the OpenAI plugin's Chat Completions LLM, pointed at OpenAI or at any
// OpenAI-compatible endpoint (OPENAI_BASE_URL, e.g. a local Ollama). The key is passed explicitly, so it does
// not matter that the plugin reads $OPENAI_API_KEY when it is imported.
import * as openai from '@livekit/agents-plugin-openai';
import { ConfigError, type Config } from '../shared/config.ts';

/** Sent when an OpenAI-compatible endpoint needs no key (the client insists on one). */
const PLACEHOLDER_KEY = 'not-needed';

export function openaiLlm(config: Pick<Config, 'OPENAI_API_KEY' | 'OPENAI_BASE_URL' | 'OPENAI_MODEL'>): openai.LLM {
  const apiKey = config.OPENAI_API_KEY ?? (config.OPENAI_BASE_URL ? PLACEHOLDER_KEY : undefined);
  if (!apiKey) {
    throw new ConfigError('OPENAI_API_KEY is not set (or set OPENAI_BASE_URL to an OpenAI-compatible endpoint that needs no key)');
  }
  return new openai.LLM({
    model: config.OPENAI_MODEL,
    apiKey,
    ...(config.OPENAI_BASE_URL ? { baseURL: config.OPENAI_BASE_URL } : {}),
  });
}
