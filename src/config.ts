import { z } from 'zod';

// An empty variable counts as unset, so `FOO=` in an .env file never turns into an invalid value.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

const positiveInt = z.coerce.number().int().positive();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// An HS256 secret shorter than its 256-bit hash is guessable offline from any one token.
const hmacSecret = z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 48`)');

export const EnvSchema = z.object({
  NODE_ENV: optional(z.enum(['development', 'production', 'test'])).default('development'),
  LOG_LEVEL: optional(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])).default('info'),

  // Storage: the first that is set wins; with none, the embedded PGlite database under EMBEDDED_DATA_DIR.
  DATABASE_URL: optional(z.string().url()),
  SUPABASE_URL: optional(z.string().url()),
  SUPABASE_SERVICE_ROLE_KEY: optional(z.string().min(1)),
  SUPABASE_DB_URL: optional(z.string().url()),
  DB_POOL_MAX: optional(positiveInt.max(200)).default(10),
  // Prepared statements on DATABASE_URL; turn off behind a transaction-mode pooler (PgBouncer, Supavisor :6543).
  DB_PREPARED_STATEMENTS: optional(z.enum(['true', 'false'])).default('true').transform((v) => v === 'true'),
  // Every store call (connect, pool wait and query together) fails as storage_unavailable after this long, so a
  // frozen database turns into a 503 or a counted failure instead of a request or a call that hangs.
  STORE_TIMEOUT_MS: optional(z.coerce.number().int().min(100).max(120_000)).default(5000),
  // On a direct connection only: the server gets STORE_TIMEOUT_MS as statement_timeout, lock_timeout and
  // idle_in_transaction_session_timeout at login. Off by default: a transaction-mode pooler refuses the login.
  DB_SERVER_TIMEOUTS: optional(z.enum(['true', 'false'])).default('false').transform((v) => v === 'true'),
  // SIGTERM/SIGINT: what is still running (requests, jobs, the store's connections) is abandoned after this long.
  SHUTDOWN_TIMEOUT_MS: optional(z.coerce.number().int().min(100).max(120_000)).default(10_000),

  EMBEDDED_DATA_DIR: optional(z.string().min(1)).default('./data/pglite'),
  EMBEDDED_DB_HOST: optional(z.string().min(1)).default('127.0.0.1'),
  EMBEDDED_DB_PORT: optional(z.coerce.number().int().min(0).max(65535)).default(54329),

  // The HTTP sidecar (src/sidecar): Stripe purchases and webhooks, the client and admin API, background jobs.
  HOST: optional(z.string().min(1)).default('0.0.0.0'),
  PORT: optional(z.coerce.number().int().min(0).max(65535)).default(8001),
  PUBLIC_BASE_URL: optional(z.string().url()).default('http://localhost:8001'),
  STRIPE_SECRET_KEY: optional(z.string().regex(/^(sk|rk)_(test|live)_\w+$/, 'a Stripe secret key like sk_test_...')),
  STRIPE_WEBHOOK_SECRET: optional(z.string().regex(/^whsec_\w+$/, 'a webhook signing secret like whsec_...')),
  // Another Stripe-compatible endpoint (stripe-mock, a proxy, tests), e.g. http://127.0.0.1:12111.
  STRIPE_API_BASE: optional(z.string().url()),
  CHECKOUT_SUCCESS_URL: optional(z.string().url()),
  CHECKOUT_CANCEL_URL: optional(z.string().url()),
  CORS_ORIGINS: optional(z.string()).default(''),
  // The web app (src/web, built by `npm run build`), served by the sidecar at / and /admin.
  WEB_DIST_DIR: optional(z.string().min(1)).default('./dist/web'),
  // Supabase Auth in the web app: the project's public anon key (never the service role key).
  SUPABASE_ANON_KEY: optional(z.string().min(1)),
  // The development sign-in (POST /auth/dev-sign-in): anyone who reaches it becomes any user, admin included.
  // Only `./launch.sh dev` turns it on; refused in production and next to any Supabase or JWKS key.
  DEV_SIGN_IN: optional(z.enum(['true', 'false'])).default('false').transform((v) => v === 'true'),
  // GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, /metrics is not served (404).
  METRICS_TOKEN: optional(z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -hex 32`)')),

  // LiveKit: the sidecar's POST /token mints room tokens with these; the agent worker connects with them.
  LIVEKIT_URL: optional(z.string().url()),
  LIVEKIT_API_KEY: optional(z.string().min(1)),
  LIVEKIT_API_SECRET: optional(z.string().min(16)),
  LIVEKIT_TOKEN_TTL_SECONDS: optional(positiveInt.max(86400)).default(3600),

  // The agent's language model: OpenAI, or any OpenAI-compatible Chat Completions endpoint (e.g. a local Ollama
  // at http://127.0.0.1:11434/v1). With OPENAI_BASE_URL set, OPENAI_API_KEY may stay unset (a placeholder is sent).
  OPENAI_API_KEY: optional(z.string().min(1)),
  OPENAI_BASE_URL: optional(z.string().url()),
  OPENAI_MODEL: optional(z.string().min(1)).default('gpt-4o-mini'),
  // The worker's voice I/O: the OpenAI plugin's speech-to-text and text-to-speech, always on api.openai.com
  // with OPENAI_API_KEY (an OpenAI-compatible chat endpoint such as Ollama usually has no speech API).
  OPENAI_STT_MODEL: optional(z.string().min(1)).default('gpt-4o-mini-transcribe'),
  OPENAI_TTS_MODEL: optional(z.string().min(1)).default('gpt-4o-mini-tts'),
  OPENAI_TTS_VOICE: optional(z.enum(['alloy', 'ash', 'ballad', 'coral', 'echo', 'fable', 'nova', 'onyx', 'sage', 'shimmer'])).default('alloy'),
  // Speech-to-text: Deepgram (the default whenever DEEPGRAM_API_KEY is set) or the OpenAI plugin's transcription.
  STT_PROVIDER: optional(z.enum(['deepgram', 'openai'])),
  DEEPGRAM_API_KEY: optional(z.string().min(1)),
  DEEPGRAM_MODEL: optional(z.string().min(1)).default('nova-3'),
  DEEPGRAM_LANGUAGE: optional(z.string().min(2)).default('en-US'),

  // The agent worker (src/agent/worker.ts).
  AGENT_HEALTH_PORT: optional(z.coerce.number().int().min(0).max(65535)).default(8081),
  NO_BALANCE_GRACE_SECONDS: optional(z.coerce.number().int().min(0).max(3600)).default(60),
  GUEST_ALLOWANCE_SECONDS: optional(z.coerce.number().int().min(0).max(86400)).default(300),
  // The call controller (src/agent/call-controller.ts): meter this long after each increment begins; while the
  // billing store cannot be reached, retry with backoff and let the call go on this long past its paid time.
  CALL_METER_LEAD_MS: optional(z.coerce.number().int().min(0).max(10_000)).default(500),
  CALL_STORE_GRACE_SECONDS: optional(z.coerce.number().int().min(0).max(3600)).default(60),
  CALL_STORE_RETRY_INITIAL_MS: optional(z.coerce.number().int().min(1).max(60_000)).default(1000),
  CALL_STORE_RETRY_MAX_MS: optional(z.coerce.number().int().min(1).max(600_000)).default(8000),

  // Background jobs of the sidecar, and where notifications (low balance, expiring card, receipts…) are posted.
  JOBS_ENABLED: optional(z.enum(['true', 'false'])).default('true').transform((v) => v === 'true'),
  EXPIRE_EVERY_SECONDS: optional(positiveInt.max(86400)).default(300),
  REAP_EVERY_SECONDS: optional(positiveInt.max(86400)).default(60),
  SESSION_MAX_SILENCE_SECONDS: optional(positiveInt.max(86400)).default(180),
  NOTIFY_EVERY_SECONDS: optional(positiveInt.max(86400)).default(30),
  LOW_BALANCE_SECONDS: optional(positiveInt.max(86400)).default(1800),
  NOTIFY_WEBHOOK_URL: optional(z.string().url()),
  NOTIFY_WEBHOOK_SECRET: optional(z.string().min(16)),
  // Postpaid usage: the meter event outbox delivered to Stripe Billing Meters, and the reconciliation of each
  // period's totals with Stripe's meter event summaries. Both run only when STRIPE_SECRET_KEY is set.
  METER_EVENTS_EVERY_SECONDS: optional(positiveInt.max(3600)).default(5),
  METER_EVENTS_BATCH_SIZE: optional(positiveInt.max(5000)).default(500),
  METER_EVENTS_CONCURRENCY: optional(positiveInt.max(256)).default(16),
  METER_EVENTS_LEASE_SECONDS: optional(positiveInt.max(86400)).default(120),
  METER_EVENTS_TIMEOUT_MS: optional(z.coerce.number().int().min(100).max(120_000)).default(10_000),
  METER_RECONCILE_EVERY_SECONDS: optional(positiveInt.max(86400)).default(3600),
  METER_RECONCILE_SETTLE_SECONDS: optional(z.coerce.number().int().min(0).max(86400)).default(600),

  // Billing rules live in the database (table billing_settings); these, when set, are written there on migrate.
  BILLING_INCREMENT_SECONDS: optional(positiveInt.max(3600)),
  BILLING_MINIMUM_SECONDS: optional(z.coerce.number().int().min(0).max(86400)),
  MAX_CONCURRENT_SESSIONS: optional(positiveInt.max(100)),
  CARD_VALIDITY_DAYS: optional(positiveInt.max(3650)),

  // Authentication of the sidecar's API (src/auth): Supabase access tokens are checked with the project's JWT
  // secret (HS256) and/or its JWKS (ES256/RS256: SUPABASE_JWKS_URL, else derived from SUPABASE_URL); JWT_SECRET
  // signs and checks local tokens (src/auth/token-cli.ts). Outside production, with no key at all, a fixed
  // dev-only secret is used; in production a missing key stops the sidecar.
  SUPABASE_JWT_SECRET: optional(hmacSecret),
  SUPABASE_JWKS_URL: optional(z.string().url()),
  JWT_SECRET: optional(hmacSecret),
  JWT_ISSUER: optional(z.string().min(1)),
  JWT_AUDIENCE: optional(z.string().min(1)).default('authenticated'),
  // Comma-separated user uuids that are admins whatever their token says.
  ADMIN_USER_IDS: optional(z.string())
    .default('')
    .transform((list) => list.split(',').map((id) => id.trim().toLowerCase()).filter((id) => id !== ''))
    .refine((ids) => ids.every((id) => UUID.test(id)), 'must be a comma-separated list of user uuids'),
});

export type Config = z.infer<typeof EnvSchema>;

export type StorageTarget =
  | { kind: 'postgres'; url: string }
  | { kind: 'supabase'; url: string; serviceRoleKey: string; dbUrl: string | undefined }
  | { kind: 'embedded'; dataDir: string; host: string; port: number };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const devSignIn = devSignInConflicts(parsed.data);
  if (devSignIn.length > 0) {
    throw new ConfigError(`DEV_SIGN_IN=true is refused here:\n  ${devSignIn.join('\n  ')}`);
  }
  const contradictions = timingContradictions(parsed.data);
  if (contradictions.length > 0) {
    throw new ConfigError(`timing settings contradict each other:\n  ${contradictions.join('\n  ')}`);
  }
  return parsed.data;
}

type DevSignInSettings = Pick<Config, 'DEV_SIGN_IN' | 'NODE_ENV' | 'SUPABASE_URL' | 'SUPABASE_ANON_KEY' |
  'SUPABASE_JWT_SECRET' | 'SUPABASE_JWKS_URL'>;

/**
 * Why the development sign-in may not be on with these settings (none: it may). It hands out admin tokens to
 * whoever asks, so it must never share a process with real users: not in production, and not where Supabase
 * tokens are accepted (SUPABASE_URL implies its JWKS), or a real user base would meet a free admin login.
 */
export function devSignInConflicts(c: DevSignInSettings): string[] {
  if (!c.DEV_SIGN_IN) return [];
  const problems: string[] = [];
  if (c.NODE_ENV === 'production') problems.push('NODE_ENV is production');
  const keys = (['SUPABASE_URL', 'SUPABASE_ANON_KEY', 'SUPABASE_JWT_SECRET', 'SUPABASE_JWKS_URL'] as const).filter((name) => c[name]);
  if (keys.length > 0) {
    problems.push(`${keys.join(', ')} ${keys.length === 1 ? 'is' : 'are'} set: with real sign-in configured, sign in through ` +
      'Supabase and set DEV_SIGN_IN=false (./launch.sh dev leaves it off when a Supabase variable is set)');
  }
  return problems;
}

type TimingSettings = Pick<Config, 'SESSION_MAX_SILENCE_SECONDS' | 'REAP_EVERY_SECONDS' | 'BILLING_INCREMENT_SECONDS' |
  'CALL_METER_LEAD_MS' | 'CALL_STORE_GRACE_SECONDS' | 'CALL_STORE_RETRY_INITIAL_MS' | 'CALL_STORE_RETRY_MAX_MS'> &
  Partial<Pick<Config, 'METER_EVENTS_LEASE_SECONDS' | 'METER_EVENTS_TIMEOUT_MS'>>;

/**
 * Timing settings that cannot all hold at once, each named with its value. The reaper settles a call when no
 * meter came within its increment plus SESSION_MAX_SILENCE_SECONDS; a live worker meters CALL_METER_LEAD_MS
 * after each increment begins and, while the store is unreachable, keeps the call going (and retrying)
 * CALL_STORE_GRACE_SECONDS past the paid time. So the allowed silence must outlast that, or the reaper ends
 * calls that are still running.
 */
export function timingContradictions(c: TimingSettings): string[] {
  const problems: string[] = [];
  const silenceMs = c.SESSION_MAX_SILENCE_SECONDS * 1000;
  const liveGapMs = c.CALL_METER_LEAD_MS + c.CALL_STORE_GRACE_SECONDS * 1000;
  if (silenceMs <= liveGapMs) {
    problems.push(`SESSION_MAX_SILENCE_SECONDS (${c.SESSION_MAX_SILENCE_SECONDS}) must be longer than ` +
      `CALL_STORE_GRACE_SECONDS (${c.CALL_STORE_GRACE_SECONDS}) + CALL_METER_LEAD_MS (${c.CALL_METER_LEAD_MS} ms): ` +
      'a worker riding out a billing-store outage goes that long past its increment without a meter, and the ' +
      'reaper would end its call while it still runs');
  }
  if (c.REAP_EVERY_SECONDS > c.SESSION_MAX_SILENCE_SECONDS) {
    problems.push(`REAP_EVERY_SECONDS (${c.REAP_EVERY_SECONDS}) must not be longer than SESSION_MAX_SILENCE_SECONDS ` +
      `(${c.SESSION_MAX_SILENCE_SECONDS}): a crashed worker's call would stay open, holding one of its user's ` +
      'concurrent calls, up to a whole reap interval past the allowed silence');
  }
  if (c.BILLING_INCREMENT_SECONDS !== undefined && c.CALL_METER_LEAD_MS >= c.BILLING_INCREMENT_SECONDS * 1000) {
    problems.push(`CALL_METER_LEAD_MS (${c.CALL_METER_LEAD_MS} ms) must be shorter than BILLING_INCREMENT_SECONDS ` +
      `(${c.BILLING_INCREMENT_SECONDS} s): each meter would come after the following increment had begun`);
  }
  if (c.CALL_STORE_RETRY_INITIAL_MS > c.CALL_STORE_RETRY_MAX_MS) {
    problems.push(`CALL_STORE_RETRY_INITIAL_MS (${c.CALL_STORE_RETRY_INITIAL_MS}) must not be longer than ` +
      `CALL_STORE_RETRY_MAX_MS (${c.CALL_STORE_RETRY_MAX_MS}), the longest wait between retries`);
  }
  if (c.METER_EVENTS_LEASE_SECONDS !== undefined && c.METER_EVENTS_TIMEOUT_MS !== undefined
      && c.METER_EVENTS_LEASE_SECONDS * 1000 < c.METER_EVENTS_TIMEOUT_MS * 2 + 1000) {
    problems.push(`METER_EVENTS_LEASE_SECONDS (${c.METER_EVENTS_LEASE_SECONDS}) must be at least twice ` +
      `METER_EVENTS_TIMEOUT_MS (${c.METER_EVENTS_TIMEOUT_MS} ms) plus a second: a sender starts no request that could ` +
      'outlive its lease, so a shorter lease leaves no time to send anything');
  }
  return problems;
}

export function storageTarget(config: Config): StorageTarget {
  if (config.DATABASE_URL) return { kind: 'postgres', url: config.DATABASE_URL };
  if (config.SUPABASE_URL) {
    if (!config.SUPABASE_SERVICE_ROLE_KEY) {
      throw new ConfigError('SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is missing');
    }
    return {
      kind: 'supabase',
      url: config.SUPABASE_URL,
      serviceRoleKey: config.SUPABASE_SERVICE_ROLE_KEY,
      dbUrl: config.SUPABASE_DB_URL,
    };
  }
  return {
    kind: 'embedded',
    dataDir: config.EMBEDDED_DATA_DIR,
    host: config.EMBEDDED_DB_HOST,
    port: config.EMBEDDED_DB_PORT,
  };
}

let cached: Config | undefined;

/** The process's configuration, parsed once. */
export function config(): Config {
  cached ??= parseConfig();
  return cached;
}
