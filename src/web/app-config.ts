/** GET /app/config: what the sidecar tells the browser at start (public values only). */
export interface AppConfig {
  auth:
    | { mode: 'local' }
    | { mode: 'supabase'; supabase_url: string; supabase_anon_key: string }
    | { mode: 'none'; reason: string };
  calls: { enabled: boolean; livekit_url: string | null };
  purchases: { enabled: boolean };
  version: string;
}
