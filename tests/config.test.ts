import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { ConfigError, EnvSchema, parseConfig, storageTarget } from '../src/config.ts';
import { ADMIN_URL } from './helpers/test-db.ts';

const run = promisify(execFile);

describe('configuration', () => {
  it('defaults to the embedded database with nothing set', () => {
    assert.deepEqual(storageTarget(parseConfig({})), {
      kind: 'embedded', dataDir: './data/pglite', host: '127.0.0.1', port: 54329,
    });
  });

  it('prefers DATABASE_URL, then Supabase, and treats empty variables as unset', () => {
    const supabase = { SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: 'k' };
    assert.equal(storageTarget(parseConfig({ DATABASE_URL: 'postgres://x@h/db', ...supabase })).kind, 'postgres');
    assert.equal(storageTarget(parseConfig({ DATABASE_URL: '', ...supabase })).kind, 'supabase');
  });

  it('lists every variable in .env.example', () => {
    const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    const listed = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    assert.deepEqual(Object.keys(EnvSchema.shape).filter((name) => !listed.has(name)), []);
  });

  it('names every invalid variable, and a Supabase URL without its key', () => {
    assert.throws(() => parseConfig({ EMBEDDED_DB_PORT: 'eighty', BILLING_INCREMENT_SECONDS: '-1' }),
      (error: unknown) => error instanceof ConfigError && /EMBEDDED_DB_PORT/.test(error.message) && /BILLING_INCREMENT_SECONDS/.test(error.message));
    assert.throws(() => storageTarget(parseConfig({ SUPABASE_URL: 'https://abc.supabase.co' })), /SUPABASE_SERVICE_ROLE_KEY is missing/);
  });
});

describe('./launch.sh migrate', () => {
  it('migrates the configured database, applies billing settings from the environment, and is a no-op the second time', async () => {
    const name = `mindbot_test_cli_${process.pid}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    const env = { ...process.env, DATABASE_URL: url.toString(), BILLING_INCREMENT_SECONDS: '30', LOG_LEVEL: 'info' };
    try {
      const first = await run('./launch.sh', ['migrate'], { env });
      assert.match(first.stdout, /migrations applied/);
      assert.doesNotMatch(first.stdout + first.stderr, /password/i);
      const second = await run('./launch.sh', ['migrate'], { env });
      assert.match(second.stdout, /already up to date/);
      const db = new pg.Client({ connectionString: url.toString() });
      await db.connect();
      const { rows } = await db.query('select billing_increment_seconds from public.billing_settings');
      await db.end();
      assert.equal(rows[0].billing_increment_seconds, 30);
    } finally {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});
