import { z } from 'zod';

// An empty variable counts as unset, so `FOO=` in an .env file never turns into an invalid value.
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

const positiveInt = z.coerce.number().int().positive();

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

  EMBEDDED_DATA_DIR: optional(z.string().min(1)).default('./data/pglite'),
  EMBEDDED_DB_HOST: optional(z.string().min(1)).default('127.0.0.1'),
  EMBEDDED_DB_PORT: optional(z.coerce.number().int().min(0).max(65535)).default(54329),

  // Billing rules live in the database (table billing_settings); these, when set, are written there on migrate.
  BILLING_INCREMENT_SECONDS: optional(positiveInt.max(3600)),
  BILLING_MINIMUM_SECONDS: optional(z.coerce.number().int().min(0).max(86400)),
  MAX_CONCURRENT_SESSIONS: optional(positiveInt.max(100)),
  CARD_VALIDITY_DAYS: optional(positiveInt.max(3650)),
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
  return parsed.data;
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
