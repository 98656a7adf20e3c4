// A loopback fake of the OpenAI Chat Completions API, as @livekit/agents-plugin-openai calls it: POST
// /v1/chat/completions with stream: true, answered with `chat.completion.chunk` server-sent events, plus
// GET /v1/models (the plugin's prewarm). Its "model": a user message that asks about time is answered with a
// tool call to check_time_balance (when that tool is offered); a tool result in the conversation is answered
// with a sentence that passes it on; anything else with a short greeting. Every request body is recorded.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatRequest {
  model: string;
  stream?: boolean;
  messages: Array<{ role: string; content?: unknown; tool_call_id?: string; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }>;
  tools?: Array<{ type: string; function: { name: string; description?: string; parameters?: unknown } }>;
  [key: string]: unknown;
}

export interface FakeOpenAI {
  /** The base URL to give the client, ending in /v1. */
  baseURL: string;
  requests: ChatRequest[];
  close(): Promise<void>;
}

export const REPLY_PREFIX = 'Here is what I found: ';

function text(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === 'string' ? part : (part as { text?: string }).text ?? '')).join('');
  return '';
}

/** A tool's output as the model sees it: the plugin sends the JSON-stringified return value. */
function toolOutput(content: unknown): string {
  const raw = text(content);
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'string' ? parsed : raw;
  } catch {
    return raw;
  }
}

type Answer = { kind: 'text'; content: string } | { kind: 'tool'; name: string; args: string };

function answer(request: ChatRequest): Answer {
  const last = request.messages.at(-1);
  if (last?.role === 'tool') return { kind: 'text', content: `${REPLY_PREFIX}${toolOutput(last.content)}` };
  const offered = new Set((request.tools ?? []).map((tool) => tool.function.name));
  if (last?.role === 'user' && /\btime\b|balance|minutes|hours/i.test(text(last.content)) && offered.has('check_time_balance')) {
    return { kind: 'tool', name: 'check_time_balance', args: '{}' };
  }
  return { kind: 'text', content: 'Hello! How can I help?' };
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const requests: ChatRequest[] = [];
  let sequence = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'test' }] }));
      return;
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
      return;
    }
    const request = JSON.parse(await body(req)) as ChatRequest;
    requests.push(request);
    const id = `chatcmpl-fake-${++sequence}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: request.model, choices, ...extra })}\n\n`;
    const reply = answer(request);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    if (reply.kind === 'tool') {
      const callId = `call_fake_${sequence}`;
      res.write(chunk([{ index: 0, delta: { role: 'assistant', content: null, tool_calls: [
        { index: 0, id: callId, type: 'function', function: { name: reply.name, arguments: '' } },
      ] }, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: reply.args } }] }, finish_reason: null }]));
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'tool_calls' }]));
    } else {
      res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
      // A few pieces, as a real model streams them.
      for (const piece of reply.content.match(/.{1,16}/gs) ?? []) {
        res.write(chunk([{ index: 0, delta: { content: piece }, finish_reason: null }]));
      }
      res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
    }
    res.write(chunk([], { usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 } }));
    res.end('data: [DONE]\n\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error) } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
