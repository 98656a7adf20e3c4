// Talk to MindBot by typing: `./launch.sh console [--user <uuid>]`.
//
// Reads one message per line from standard input (a terminal or a pipe), prints the agent's replies on
// standard output, logs on standard error. No LiveKit: an AgentSession in text mode with the real billing
// tools on the configured store (the embedded database by default) and the configured OpenAI-compatible LLM.
// Without --user the caller is a guest. Ends at end of input, or on "exit" / "quit".
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { initializeLogger, voice } from '@livekit/agents';
import { pino, type Logger } from 'pino';
import { ConfigError, parseConfig, type Config } from '../shared/config.ts';
import { openBillingStore } from '../billing/open-store.ts';
import { greetingFor, MindBotAgent } from './mindbot-agent.ts';
import { checkLlmEndpoint, describeLlmFailure, LlmUnavailableError } from './llm-endpoint.ts';
import { openaiLlm } from './model.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAME = 'MindBot';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: ./launch.sh console [--user <uuid>]\n`);
  process.exit(2);
}

/**
 * The framework logs to standard output by default; here standard output is the conversation. Its warnings
 * (each retry of a failed model call, with the API's raw error body) are only for debugging: the console says
 * what failed in one line of its own.
 */
function routeFrameworkLogs(config: Config, log: Logger): void {
  const level = config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' || config.LOG_LEVEL === 'silent'
    ? config.LOG_LEVEL : 'error';
  initializeLogger({ pretty: false, level });
  // @livekit/agents keeps its logger in a process-wide slot keyed by this symbol (src/log_core.ts); put a
  // standard-error logger there so its warnings do not land in the conversation.
  (globalThis as Record<symbol, unknown>)[Symbol.for('@livekit/agents:logger')] = log.child({ component: 'livekit-agents' }, { level });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { user: { type: 'string' } }, strict: true });
  const userId = values.user?.toLowerCase() ?? null;
  if (userId !== null && !UUID.test(userId)) usage(`--user must be a user uuid, not "${values.user}"`);

  const config = parseConfig();
  const log = pino({ level: config.LOG_LEVEL, base: { service: 'mindbot-console' } }, pino.destination(2));
  routeFrameworkLogs(config, log);
  const llm = openaiLlm(config);
  await checkLlmEndpoint(config);
  const opened = await openBillingStore(config, { log });
  log.debug({ store: opened.description, model: config.OPENAI_MODEL }, 'console ready');

  const session = new voice.AgentSession({ llm, vad: null, turnHandling: { turnDetection: null } });
  // A failed attempt is retried by the framework; one it gives up on ends the console with one line.
  let fatal: string | null = null;
  session.on(voice.AgentSessionEventTypes.Error, (event) => {
    const source = String(event.source?.constructor?.name ?? event.source);
    const recoverable = (event.error as { recoverable?: unknown }).recoverable !== false;
    const line = describeLlmFailure(event.error, config);
    if (recoverable) log.debug({ source, cause: line }, 'agent error, retrying');
    else fatal ??= line;
  });
  const say = (text: string) => process.stdout.write(`${NAME}: ${text}\n`);
  const interactive = process.stdin.isTTY === true;

  try {
    const greeting = await greetingFor(opened.store, userId);
    const deps = { store: opened.store, userId };
    await session.start({ agent: new MindBotAgent(deps, { greeting }) });
    say(greeting);

    const lines = createInterface({ input: process.stdin, terminal: interactive });
    if (interactive) process.stdout.write('> ');
    for await (const raw of lines) {
      const line = raw.trim();
      if (line === 'exit' || line === 'quit') break;
      if (line !== '') {
        const result = await session.run({ userInput: line }).wait();
        if (fatal) throw new LlmUnavailableError(fatal);
        const replies = result.events
          .filter(voice.testing.isChatMessageEvent)
          .filter((event) => event.item.role === 'assistant')
          .map((event) => event.item.textContent ?? '')
          .filter((text) => text.trim() !== '');
        if (replies.length === 0) process.stderr.write('(no reply: see the log above)\n');
        for (const text of replies) say(text);
      }
      if (interactive) process.stdout.write('> ');
    }
    lines.close();
  } finally {
    await session.close().catch(() => {});
    await opened.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    const expected = error instanceof ConfigError || error instanceof LlmUnavailableError;
    process.stderr.write(`${expected ? `console: ${(error as Error).message}` : error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
