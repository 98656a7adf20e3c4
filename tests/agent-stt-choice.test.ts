import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseStt, type SttConfig } from '../src/agent/stt-choice.ts';
import { EnvSchema } from '../src/shared/config.ts';

/** The configuration as the worker would parse it from these variables (defaults included). */
const configOf = (env: Record<string, string>): SttConfig => EnvSchema.parse(env);

describe('chooseStt', () => {
  const cases: Array<{ name: string; env: Record<string, string>; want: ReturnType<typeof chooseStt> }> = [
    {
      name: 'OpenAI when nothing says otherwise',
      env: { OPENAI_API_KEY: 'sk-o' },
      want: { provider: 'openai', model: 'gpt-4o-mini-transcribe', apiKey: 'sk-o' },
    },
    {
      name: 'Deepgram whenever its key is set and no provider is named',
      env: { DEEPGRAM_API_KEY: 'dg-key', OPENAI_API_KEY: 'sk-o' },
      want: { provider: 'deepgram', apiKey: 'dg-key', model: 'nova-3', language: 'en-US' },
    },
    {
      name: 'an empty STT_PROVIDER counts as unset',
      env: { STT_PROVIDER: '', DEEPGRAM_API_KEY: 'dg-key' },
      want: { provider: 'deepgram', apiKey: 'dg-key', model: 'nova-3', language: 'en-US' },
    },
    {
      name: 'Deepgram with the configured model and language',
      env: { STT_PROVIDER: 'deepgram', DEEPGRAM_API_KEY: 'dg-key', DEEPGRAM_MODEL: 'nova-2', DEEPGRAM_LANGUAGE: 'de' },
      want: { provider: 'deepgram', apiKey: 'dg-key', model: 'nova-2', language: 'de' },
    },
    {
      name: 'OpenAI when named, even with a Deepgram key',
      env: { STT_PROVIDER: 'openai', DEEPGRAM_API_KEY: 'dg-key', OPENAI_STT_MODEL: 'whisper-1' },
      want: { provider: 'openai', model: 'whisper-1', apiKey: undefined },
    },
  ];
  for (const { name, env, want } of cases) {
    it(name, () => assert.deepEqual(chooseStt(configOf(env)), want));
  }

  it('names the missing key when Deepgram is asked for without one', () => {
    assert.throws(() => chooseStt(configOf({ STT_PROVIDER: 'deepgram', OPENAI_API_KEY: 'sk-o' })), /DEEPGRAM_API_KEY/);
  });
});
