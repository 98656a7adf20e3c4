// The sidecar's HTTP API as the browser sees it: same origin, a bearer token, and every error answered as
// {error: {code, message}} turned into an ApiError the screens can show as it is.

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface ApiClient {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  patch<T>(path: string, body?: unknown): Promise<T>;
  delete<T>(path: string): Promise<T>;
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
  const send = async <T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> => {
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
    return (await response.json()) as T;
  };
  return {
    get: (path) => send('GET', path),
    post: (path, body, headers) => send('POST', path, body, headers),
    patch: (path, body) => send('PATCH', path, body),
    delete: (path) => send('DELETE', path),
  };
}

/** A fresh key per user action, so a double click or a retry never starts two purchases. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
