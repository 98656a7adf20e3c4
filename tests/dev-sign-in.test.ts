// The development sign-in as processes start it: the sidecar run as `./launch.sh start` runs it (the settings of
// .env.example) offers none, and without any key does not start at all; run as `./launch.sh dev` runs it, it
// offers it and says so once, loudly; next to a Supabase key it refuses to start.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';

const JWT_SECRET = 'dev-sign-in-test-secret-0123456789abcdef';
const STARTUP_DEADLINE_MS = 60_000;

/** The values of .env.example, as `set -a; . ./.env` reads them (a word after `=`, the comment dropped). */
function envExample(): Record<string, string> {
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(\S*)/gm)].map((m) => [m[1]!, m[2]!]));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Sidecar {
  url: string;
  child: ChildProcess;
  /** Every JSON log line so far. */
  lines: { level: number; msg: string }[];
  stop(): Promise<void>;
}

/** The sidecar process with exactly this environment (nothing inherited but PATH and HOME). */
async function startSidecarProcess(env: Record<string, string>): Promise<Sidecar> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/sidecar/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Sidecar['lines'] = [];
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const complete = buffered.split('\n');
    buffered = complete.pop()!;
    for (const line of complete) {
      try { lines.push(JSON.parse(line) as Sidecar['lines'][number]); } catch { /* not a log line */ }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}: ${stderr}${JSON.stringify(lines)}`);
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) })).ok) return { url, child, lines, stop };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the sidecar did not answer /health within ${STARTUP_DEADLINE_MS} ms: ${stderr}`);
}

/** Runs the sidecar expecting it to refuse to start: its exit code and everything it wrote. */
function refusedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/sidecar/main.ts'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running: ${output}`)); }, STARTUP_DEADLINE_MS);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

const DEV_WARNING = /DEVELOPMENT SIGN-IN IS ON/;

describe('the development sign-in as the launcher starts the sidecar', () => {
  let db: TestDatabase;
  let webDir: string;
  let base: Record<string, string>;
  before(async () => {
    db = await createPostgresDatabase();
    webDir = mkdtempSync(join(tmpdir(), 'mindbot-no-web-'));
    // .env.example as an operator copies it, pointed at the test database; no jobs, no web build needed.
    base = { ...envExample(), DATABASE_URL: db.url!, JOBS_ENABLED: 'false', LOG_LEVEL: 'info', WEB_DIST_DIR: webDir, LOG_FORMAT: 'json' };
  });
  after(async () => {
    await db?.close();
    rmSync(webDir, { recursive: true, force: true });
  });

  it('like `start` (the settings of .env.example plus a key): no sign-in offered, nothing said about one', async () => {
    const sidecar = await startSidecarProcess({ ...base, JWT_SECRET });
    try {
      const signIn = await fetch(`${sidecar.url}/auth/dev-sign-in`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ admin: true }),
      });
      assert.equal(signIn.status, 404);
      const body = await signIn.json() as { error: { code: string }; access_token?: string };
      assert.equal(body.error.code, 'not_found');
      assert.equal(body.access_token, undefined);
      const config = await (await fetch(`${sidecar.url}/app/config`)).json() as { auth: { mode: string } };
      assert.equal(config.auth.mode, 'none');
      assert.equal(sidecar.lines.filter((l) => DEV_WARNING.test(l.msg)).length, 0);
    } finally {
      await sidecar.stop();
    }
  });

  it('like `start` without any key: refuses to start, naming what to set (the public dev secret is never accepted)', async () => {
    const { code, output } = await refusedStart(base);
    assert.equal(code, 1);
    assert.match(output, /no API token verification key configured/);
    assert.match(output, /JWT_SECRET/);
  });

  it('like `dev`: offers the sign-in on loopback and logs exactly one loud warning line', async () => {
    const sidecar = await startSidecarProcess({ ...base, DEV_SIGN_IN: 'true' });
    try {
      const signIn = await fetch(`${sidecar.url}/auth/dev-sign-in`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ admin: true }),
      });
      assert.equal(signIn.status, 200);
      const { access_token: token, admin } = await signIn.json() as { access_token: string; admin: boolean };
      assert.equal(admin, true);
      assert.equal((await fetch(`${sidecar.url}/admin/users`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      // Through a local tunnel or proxy (it adds forwarding headers), the same machine is not the one asking.
      const relayed = await fetch(`${sidecar.url}/auth/dev-sign-in`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' }, body: '{}',
      });
      assert.equal(relayed.status, 403);
      const warnings = sidecar.lines.filter((l) => DEV_WARNING.test(l.msg));
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0]!.level, 40);
      assert.match(warnings[0]!.msg, /any user, admin included/);
    } finally {
      await sidecar.stop();
    }
  });

  it('refuses to start with DEV_SIGN_IN next to a Supabase key, or in production', async () => {
    // Every Supabase variable is refused the same way (tests/config.test.ts); one of them here, as a process.
    for (const extra of [{ SUPABASE_JWT_SECRET: 's'.repeat(40) }, { NODE_ENV: 'production', JWT_SECRET }] as Record<string, string>[]) {
      const { code, output } = await refusedStart({ ...base, DEV_SIGN_IN: 'true', ...extra });
      assert.equal(code, 1, output);
      assert.match(output, /DEV_SIGN_IN=true is refused/);
      assert.doesNotMatch(output, DEV_WARNING);
    }
  });
});
