// Why a request to another server failed, in a few words an operator can act on (for the one-line errors of
// the console and the worker), instead of a stack or a library's error object.

const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
};

/** The cause of a failed fetch in a few words, with the system's code when there is one. */
export function networkCause(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${timeoutMs / 1000}s`;
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (code) return `${NETWORK_CAUSES[code] ?? (typeof cause?.message === 'string' ? cause.message : 'network error')} (${code})`;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether anything answers HTTP at the LiveKit server's URL (ws/wss are HTTP/HTTPS underneath; the server
 * answers its root). Unreachable: the one line to show; reachable: null. Without this, the framework retries
 * the connection for minutes and logs each attempt with a stack.
 */
export async function liveKitUnreachable(url: string, timeoutMs = 10_000): Promise<string | null> {
  const http = url.replace(/^ws(s?):\/\//, 'http$1://');
  try {
    const response = await fetch(http, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel().catch(() => {});
    return null;
  } catch (error) {
    return `cannot reach the LiveKit server at ${url}: ${networkCause(error, timeoutMs)}`;
  }
}
