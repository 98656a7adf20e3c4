// The sidecar's HTTP API as the browser sees it: same origin, a bearer token, and every error answered as
// {error: {code, message}} turned into an ApiError the screens can show as it is. Every answer is parsed with
// its contract (src/shared/api-contracts.ts), so a screen never reads a field the server did not send.
import type { z } from 'zod';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Each call names the contract of its answer (src/shared/api-contracts.ts, admin-contracts.ts). */
export interface ApiClient {
  get<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S>>;
  post<S extends z.ZodType>(path: string, body: unknown, schema: S, headers?: Record<string, string>): Promise<z.output<S>>;
  patch<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.output<S>>;
  put<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.output<S>>;
  delete<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S>>;
}

/** An answer that does not match its contract: a server of another version, or a proxy's page. */
function unexpected(path: string, error: z.ZodError): ApiError {
  const issue = error.issues[0];
  const where = issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : '';
  return new ApiError(0, 'unexpected_answer', `The server's answer to ${path.split('?')[0]} was not in the expected shape${where}. Reload the page; if it persists, the app and the server are of different versions.`);
}

/** What the sidecar said, or a message a person can act on when it said nothing useful. */
async function failure(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch { /* not JSON: a proxy's error page */ }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    return new ApiError(response.status, error.code, error.message);
  }
  return new ApiError(response.status, 'http_error', `The server answered ${response.status} ${response.statusText}.`);
}

export function createApi(getToken: () => string | null, fetchImpl: typeof fetch = fetch.bind(globalThis)): ApiClient {
  const send = async <S extends z.ZodType>(method: string, path: string, body: unknown, schema: S, extra: Record<string, string> = {}): Promise<z.output<S>> => {
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    const token = getToken();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetchImpl(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'network_error', 'Could not reach the MindBot server. Check your connection and try again.');
    }
    if (!response.ok) throw await failure(response);
    const parsed = schema.safeParse(await response.json());
    if (!parsed.success) throw unexpected(path, parsed.error);
    return parsed.data;
  };
  return {
    get: (path, schema) => send('GET', path, undefined, schema),
    post: (path, body, schema, headers) => send('POST', path, body, schema, headers),
    patch: (path, body, schema) => send('PATCH', path, body, schema),
    put: (path, body, schema) => send('PUT', path, body, schema),
    delete: (path, schema) => send('DELETE', path, undefined, schema),
  };
}

/** A fresh key per user action, so a double click or a retry never starts two purchases. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
