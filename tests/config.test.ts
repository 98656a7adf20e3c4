import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { ConfigError, EnvSchema, parseConfig, storageTarget, timingContradictions } from '../src/shared/config.ts';
import { callOptionsFromConfig } from '../src/agent/call-options.ts';
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

describe('the development sign-in', () => {
  const refused = (env: Record<string, string>, ...names: RegExp[]) =>
    assert.throws(() => parseConfig({ DEV_SIGN_IN: 'true', ...env }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /DEV_SIGN_IN=true is refused/);
      for (const name of names) assert.match(error.message, name);
      return true;
    });

  it('is off unless DEV_SIGN_IN is exactly true, whatever NODE_ENV says', () => {
    for (const env of [{}, { NODE_ENV: 'development' }, { NODE_ENV: 'test' }, { DEV_SIGN_IN: '' }, { DEV_SIGN_IN: 'false' }]) {
      assert.equal(parseConfig(env).DEV_SIGN_IN, false, JSON.stringify(env));
    }
    assert.equal(parseConfig({ DEV_SIGN_IN: 'true' }).DEV_SIGN_IN, true);
    assert.equal(parseConfig({ DEV_SIGN_IN: 'true', JWT_SECRET: 'j'.repeat(32), DATABASE_URL: 'postgres://x@h/db' }).DEV_SIGN_IN, true);
    assert.throws(() => parseConfig({ DEV_SIGN_IN: 'yes' }), /DEV_SIGN_IN/);
    assert.throws(() => parseConfig({ DEV_SIGN_IN: '1' }), /DEV_SIGN_IN/);
  });

  it('is refused in production and next to any Supabase or JWKS key, naming them', () => {
    refused({ NODE_ENV: 'production' }, /NODE_ENV is production/);
    refused({ SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: 'k' }, /SUPABASE_URL is set/);
    refused({ SUPABASE_ANON_KEY: 'anon' }, /SUPABASE_ANON_KEY is set/);
    refused({ SUPABASE_JWT_SECRET: 's'.repeat(32) }, /SUPABASE_JWT_SECRET is set/);
    refused({ SUPABASE_JWKS_URL: 'https://abc.supabase.co/auth/v1/.well-known/jwks.json' }, /SUPABASE_JWKS_URL is set/, /DEV_SIGN_IN=false/);
    refused({ NODE_ENV: 'production', SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_ANON_KEY: 'anon' },
      /NODE_ENV is production/, /SUPABASE_URL, SUPABASE_ANON_KEY are set/);
    // Off, the same settings are fine.
    assert.doesNotThrow(() => parseConfig({ NODE_ENV: 'production', SUPABASE_URL: 'https://abc.supabase.co', DEV_SIGN_IN: 'false' }));
  });

  it('is on only in ./launch.sh dev: the container, .env.example and start leave it off', () => {
    const example = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
    assert.match(example, /^DEV_SIGN_IN=\s*(#|$)/m);
    assert.match(example, /^NODE_ENV=\s*(#|$)/m, '.env.example does not pin NODE_ENV (development opened things before)');
    assert.match(example, /^HOST=\s*(#|$)/m);
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    assert.match(dockerfile, /NODE_ENV=production/);
    assert.match(dockerfile, /DEV_SIGN_IN=false/);
    const launcher = readFileSync(new URL('../launch.sh', import.meta.url), 'utf8');
    const turnedOn = launcher.split('\n').filter((line) => /DEV_SIGN_IN=/.test(line) && !/^\s*#/.test(line));
    assert.equal(turnedOn.length, 1, turnedOn.join('\n'));
    const devCase = launcher.slice(launcher.indexOf('\n  dev)'), launcher.indexOf('\n  start)'));
    assert.ok(devCase.includes(turnedOn[0]!), 'only the dev command turns it on');
    assert.match(devCase, /export HOST="\$\{HOST:-127\.0\.0\.1\}"/);
  });
});

describe('timing settings', () => {
  const refused = (env: Record<string, string>, ...names: string[]) =>
    assert.throws(() => parseConfig(env), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /timing settings contradict each other/);
      for (const name of names) assert.match(error.message, new RegExp(`${name} \\(`), `${name} is named with its value`);
      return true;
    });

  it('accepts the defaults, and an hour-long increment with them', () => {
    assert.deepEqual(timingContradictions(parseConfig({})), []);
    assert.equal(parseConfig({ BILLING_INCREMENT_SECONDS: '3600' }).BILLING_INCREMENT_SECONDS, 3600);
  });

  it('refuses an allowed silence the store-outage grace outlasts: the reaper would end calls still running', () => {
    refused({ SESSION_MAX_SILENCE_SECONDS: '60' }, 'SESSION_MAX_SILENCE_SECONDS', 'CALL_STORE_GRACE_SECONDS', 'CALL_METER_LEAD_MS');
    refused({ CALL_STORE_GRACE_SECONDS: '180' }, 'SESSION_MAX_SILENCE_SECONDS', 'CALL_STORE_GRACE_SECONDS');
    // Equal is not enough: the last retry comes at the end of the grace, the lead after the boundary.
    refused({ SESSION_MAX_SILENCE_SECONDS: '120', CALL_STORE_GRACE_SECONDS: '120', CALL_METER_LEAD_MS: '0' }, 'SESSION_MAX_SILENCE_SECONDS');
    assert.doesNotThrow(() => parseConfig({ SESSION_MAX_SILENCE_SECONDS: '121', CALL_STORE_GRACE_SECONDS: '120', CALL_METER_LEAD_MS: '500' }));
  });

  it('refuses a reap interval longer than the allowed silence', () => {
    refused({ REAP_EVERY_SECONDS: '600' }, 'REAP_EVERY_SECONDS', 'SESSION_MAX_SILENCE_SECONDS');
    assert.doesNotThrow(() => parseConfig({ REAP_EVERY_SECONDS: '180' }));
  });

  it('refuses a meter lead as long as the increment, and a first retry longer than the longest', () => {
    refused({ BILLING_INCREMENT_SECONDS: '1', CALL_METER_LEAD_MS: '1000' }, 'CALL_METER_LEAD_MS', 'BILLING_INCREMENT_SECONDS');
    refused({ CALL_STORE_RETRY_INITIAL_MS: '9000' }, 'CALL_STORE_RETRY_INITIAL_MS', 'CALL_STORE_RETRY_MAX_MS');
  });

  it('lists every contradiction at once', () => {
    assert.throws(() => parseConfig({ SESSION_MAX_SILENCE_SECONDS: '30', REAP_EVERY_SECONDS: '60' }),
      (error: unknown) => error instanceof ConfigError && error.message.split('\n').length === 3);
  });

  it('stops the sidecar at startup, naming the settings, before it touches anything', async () => {
    const env = { ...process.env, SESSION_MAX_SILENCE_SECONDS: '45', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', PORT: '0' };
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'src/sidecar/main.ts'], { env, timeout: 60_000 }),
      (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 1);
        assert.match(String(error.stderr), /SESSION_MAX_SILENCE_SECONDS \(45\) must be longer than CALL_STORE_GRACE_SECONDS \(60\)/);
        return true;
      });
  });

  it("gives the call controller the checked values", () => {
    const options = callOptionsFromConfig(parseConfig({
      CALL_METER_LEAD_MS: '250', CALL_STORE_GRACE_SECONDS: '30', CALL_STORE_RETRY_INITIAL_MS: '500', CALL_STORE_RETRY_MAX_MS: '4000',
    }));
    assert.equal(options.meterLeadMs, 250);
    assert.equal(options.storeOutageGraceSeconds, 30);
    assert.deepEqual(options.storeRetry, { initialMs: 500, maxMs: 4000, factor: 2 });
    assert.equal(options.storeCallTimeoutMs, 5000, 'a store call in a call has the store deadline by default');
    assert.equal(callOptionsFromConfig(parseConfig({ STORE_TIMEOUT_MS: '2500' })).storeCallTimeoutMs, 2500);
  });

  it('bounds every store call and the shutdown: a few seconds by default, never zero', () => {
    const defaults = parseConfig({});
    assert.equal(defaults.STORE_TIMEOUT_MS, 5000);
    assert.equal(defaults.SHUTDOWN_TIMEOUT_MS, 10_000);
    assert.throws(() => parseConfig({ STORE_TIMEOUT_MS: '0' }), /STORE_TIMEOUT_MS/);
    assert.throws(() => parseConfig({ SHUTDOWN_TIMEOUT_MS: 'forever' }), /SHUTDOWN_TIMEOUT_MS/);
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
