import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import ws from 'ws';
import { BillingError, billingErrorFromDatabase } from './errors.ts';
import type { RpcTransport } from './store.ts';

export interface SupabaseTransportOptions {
  url: string;
  serviceRoleKey: string;
  /** Replaces global fetch: tests answer the requests from a real database. */
  fetch?: typeof fetch;
  /** Each request to the Data API is aborted after this long (STORE_TIMEOUT_MS); unset: no deadline. */
  timeoutMs?: number;
}

/**
 * fetch with a deadline: supabase-js has no timeout of its own, and a request to a frozen API would wait for as
 * long as the freeze. The abort makes postgrest-js answer status 0, which the transport maps to storage_unavailable.
 */
export function fetchWithDeadline(base: typeof fetch, timeoutMs: number): typeof fetch {
  return (input, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    return base(input, { ...init, signal });
  };
}

export function createServiceClient(options: SupabaseTransportOptions): SupabaseClient {
  const base = options.fetch ?? ((input, init) => fetch(input, init));
  const doFetch = options.timeoutMs === undefined ? options.fetch : fetchWithDeadline(base, options.timeoutMs);
  return createClient(options.url, options.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: doFetch ? { fetch: doFetch } : {},
    // Node 20 has no WebSocket of its own, and createClient refuses to start without one.
    realtime: { transport: ws as never },
  });
}

/** Calls the SQL functions through Supabase's Data API (PostgREST's /rest/v1/rpc) with the service role. */
export function supabaseTransport(client: SupabaseClient): RpcTransport {
  return {
    async call(fn, args) {
      const body = Object.fromEntries(
        Object.entries(args)
          .filter(([, value]) => value !== undefined)
          .map(([name, value]) => [name, value instanceof Date ? value.toISOString() : value]),
      );
      let response;
      try {
        response = await client.rpc(fn, body);
      } catch (error) {
        throw new BillingError('storage_unavailable', `Supabase unreachable: ${String(error)}`, { cause: error });
      }
      const { data, error, status } = response;
      if (error) {
        // postgrest-js reports a failed or aborted fetch (our deadline) as status 0, its code whatever the thrown
        // error carried (a DOMException's legacy number); PostgREST reports a lost database as PGRST000-PGRST003.
        if (status === 0 || ((!error.code || /^PGRST00\d$/.test(error.code)) && status >= 500)) {
          throw new BillingError('storage_unavailable', `Supabase unreachable: ${error.message}`, { cause: error });
        }
        throw billingErrorFromDatabase(error, error);
      }
      return data;
    },
    close: async () => {},
  };
}
