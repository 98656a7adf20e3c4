// Which speech-to-text the worker uses, decided from the configuration alone (pure, so every case is tested):
// Deepgram when STT_PROVIDER=deepgram, or when it is unset and DEEPGRAM_API_KEY is; otherwise the OpenAI
// plugin's transcription. The plugin itself is imported by the worker only after this choice is made.
import type { Config } from '../shared/config.ts';

export type SttChoice =
  | { provider: 'deepgram'; apiKey: string; model: string; language: string }
  | { provider: 'openai'; model: string; apiKey: string | undefined };

export type SttConfig = Pick<Config,
  'STT_PROVIDER' | 'DEEPGRAM_API_KEY' | 'DEEPGRAM_MODEL' | 'DEEPGRAM_LANGUAGE' | 'OPENAI_STT_MODEL' | 'OPENAI_API_KEY'>;

/** The STT to build. Throws, naming the variable, when Deepgram is asked for without its key. */
export function chooseStt(config: SttConfig): SttChoice {
  const provider = config.STT_PROVIDER ?? (config.DEEPGRAM_API_KEY ? 'deepgram' : 'openai');
  if (provider === 'openai') return { provider, model: config.OPENAI_STT_MODEL, apiKey: config.OPENAI_API_KEY };
  if (!config.DEEPGRAM_API_KEY) {
    throw new Error('STT_PROVIDER=deepgram needs DEEPGRAM_API_KEY (or set STT_PROVIDER=openai to transcribe with OpenAI)');
  }
  return { provider, apiKey: config.DEEPGRAM_API_KEY, model: config.DEEPGRAM_MODEL, language: config.DEEPGRAM_LANGUAGE };
}
