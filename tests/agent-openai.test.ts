// The production LLM path end to end: the OpenAI plugin's openai.LLM, pointed at a loopback fake of the Chat
// Completions API (tests/helpers/fake-openai.ts), drives MindBotAgent in an AgentSession in text mode with the
// real billing tools on the real test database. Then the console script (src/agent/console.ts) the same way,
// as a child process fed through a pipe.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { initializeLogger, voice } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import { MindBotAgent } from '../src/agent/mindbot-agent.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { startFakeOpenAI, REPLY_PREFIX, type ChatRequest, type FakeOpenAI } from './helpers/fake-openai.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const MODEL = 'fake-model';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const toolNames = (request: ChatRequest) => (request.tools ?? []).map((tool) => tool.function.name);

describe('MindBot on the OpenAI plugin against a fake Chat Completions API', () => {
  let db: TestDatabase;
  let store: BillingStore;
  let fake: FakeOpenAI;
  const clock = new TestClock('2026-03-02T09:00:00Z');

  before(async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    db = await createPostgresDatabase();
    store = db.store(clock.now, { poolSize: 4 });
    fake = await startFakeOpenAI();
  });
  after(async () => {
    await store?.close();
    await fake?.close();
    await db?.close();
  });

  it('the model calls check_time_balance, gets the true balance back, and says it', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `grant-${user}` });
    const before = fake.requests.length;

    const session = new voice.AgentSession({
      llm: new openai.LLM({ baseURL: fake.baseURL, apiKey: 'test', model: MODEL }),
      vad: null,
      turnHandling: { turnDetection: null },
    });
    await session.start({ agent: new MindBotAgent({ store, userId: user, now: clock.now }) });
    try {
      const result = await session.run({ userInput: 'how much time do I have?' }).wait();

      const truth = 'You have 5 hours and 30 minutes of talk time left, on one time card. It expires on March 2, 2027.';
      const requests = fake.requests.slice(before);
      assert.equal(requests.length, 2, 'one request for the tool call, one with its result');
      const [first, second] = requests as [ChatRequest, ChatRequest];

      assert.equal(first.model, MODEL);
      assert.equal(first.stream, true);
      assert.deepEqual(toolNames(first).sort(),
        ['check_time_balance', 'estimate_session_cost', 'get_pricing_packages', 'get_session_summary', 'start_purchase_process']);
      assert.equal(first.messages.at(-1)?.role, 'user');
      assert.match(String(first.messages[0]?.content), /MindBot/, 'the instructions go first');

      const call = second.messages.find((m) => m.role === 'assistant' && m.tool_calls?.length);
      assert.equal(call?.tool_calls?.[0]?.function.name, 'check_time_balance');
      const output = second.messages.at(-1)!;
      assert.equal(output.role, 'tool');
      assert.equal(output.tool_call_id, call?.tool_calls?.[0]?.id);
      assert.equal(JSON.parse(String(output.content)), truth, 'the tool output carries the true balance');

      result.expect.nextEvent().isFunctionCall({ name: 'check_time_balance' });
      result.expect.nextEvent().isFunctionCallOutput({ output: JSON.stringify(truth), isError: false });
      const message = result.expect.nextEvent().isMessage({ role: 'assistant' }).event().item;
      result.expect.noMoreEvents();
      assert.equal(message.textContent, `${REPLY_PREFIX}${truth}`);
    } finally {
      await session.close();
    }
  });

  // The console as an operator runs it, minus launch.sh: a child process, one line piped in.
  function runConsole(args: string[], input: string, baseURL = fake.baseURL): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: db.url!,
        OPENAI_BASE_URL: baseURL,
        OPENAI_API_KEY: 'test',
        OPENAI_MODEL: MODEL,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'test',
      };
      delete env.SUPABASE_URL;
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/agent/console.ts', ...args], { cwd: ROOT, env, stdio: 'pipe' });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`console timed out\n${stdout}\n${stderr}`)); }, 60_000);
      child.on('error', reject);
      child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
      child.stdin.end(input);
    });
  }

  it('./launch.sh console: a user types a question and reads the true balance', async () => {
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `grant-console-${user}` });
    const { code, stdout, stderr } = await runConsole(['--user', user], 'how much time do I have?\n');
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.equal(lines[0], 'MindBot: Welcome back! You have 5.5 hours of conversation time remaining. How can I help you today?');
    assert.match(lines[1] ?? '', /^MindBot: Here is what I found: You have 5 hours and 30 minutes of talk time left, on one time card\. It expires /);
    assert.equal(lines.length, 2, stdout);
  });

  it('./launch.sh console without --user is a guest', async () => {
    const { code, stdout, stderr } = await runConsole([], 'how much time do I have?\nexit\nignored after exit\n');
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^MindBot: Hi! I'm MindBot\. You're talking as a guest/);
    assert.match(lines[1] ?? '', /^MindBot: Here is what I found: You're talking as a guest, so your time isn't tracked/);
    assert.equal(lines.length, 2, stdout);
  });

  it('./launch.sh console whose model cannot be reached says so in one line, naming the URL and the cause, and exits 1', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const url = `http://127.0.0.1:${closed}/v1`;
    const { code, stdout, stderr } = await runConsole([], 'hello\n', url);
    assert.equal(code, 1);
    assert.equal(stdout, '', 'no greeting from a console that cannot talk');
    assert.deepEqual(stderr.trim().split('\n'), [`console: cannot reach the language model at ${url}: connection refused (ECONNREFUSED)`]);
  });

  it('./launch.sh console whose model refuses the key mid-conversation prints one line, never the API error body', async () => {
    // OpenAI's answer to a wrong key (its published error object), after /models answered as a proxy might.
    const refusing = createServer((request, response) => {
      if (request.method === 'GET' && request.url === '/v1/models') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [] }));
        return;
      }
      request.resume();
      response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({
        error: {
          message: 'Incorrect API key provided: test. You can find your API key at https://platform.openai.com/account/api-keys.',
          type: 'invalid_request_error', param: null, code: 'invalid_api_key',
        },
      }));
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/v1`;
    try {
      const { code, stdout, stderr } = await runConsole([], 'how much time do I have?\n', url);
      assert.equal(code, 1);
      assert.match(stdout, /^MindBot: Hi! I'm MindBot\./, 'the greeting needs no model');
      assert.equal(stdout.trim().split('\n').length, 1, stdout);
      assert.equal(stderr.trim().split('\n').at(-1), `console: the language model at ${url} refused the API key (HTTP 401): check OPENAI_API_KEY`);
      for (const raw of ['invalid_api_key', 'Incorrect API key', 'invalid_request_error', '"error":{']) {
        assert.ok(!stderr.includes(raw) && !stdout.includes(raw), `no raw API error (${raw}) in:\n${stderr}`);
      }
    } finally {
      await new Promise((resolve) => refusing.close(resolve));
    }
  });

  it('./launch.sh console rejects a --user that is not a uuid', async () => {
    const { code, stderr } = await runConsole(['--user', 'bob'], '');
    assert.equal(code, 2);
    assert.match(stderr, /--user must be a user uuid/);
  });
});
