import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import ws from 'ws';
import { BillingError, billingErrorFromDatabase } from './errors.ts';
import type { RpcTransport } from './store.ts';

export interface SupabaseTransportOptions {
  url: string;
  serviceRoleKey: string;
  /** Replaces global fetch: tests answer the requests from a real database. */
  fetch?: typeof fetch;
}

export function createServiceClient(options: SupabaseTransportOptions): SupabaseClient {
  return createClient(options.url, options.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: options.fetch ? { fetch: options.fetch } : {},
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
        // postgrest-js reports a failed fetch as status 0 with no SQLSTATE; PostgREST reports a lost database
        // as PGRST000-PGRST003 (503/504).
        if ((!error.code || /^PGRST00\d$/.test(error.code)) && (status === 0 || status >= 500)) {
          throw new BillingError('storage_unavailable', `Supabase unreachable: ${error.message}`, { cause: error });
        }
        throw billingErrorFromDatabase(error, error);
      }
      return data;
    },
    close: async () => {},
  };
}
