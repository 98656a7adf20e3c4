// `./launch.sh dev` as a new user runs it: from a fresh clone (only committed files, no dist/web, no data),
// with the npm install already there (node_modules linked, nothing downloaded). It must serve the web app and
// /health, keep serving `/` through a rebuild, and stop every process it started on SIGTERM (an IDE's stop
// button, `timeout`) or on Ctrl-C (SIGINT to the whole process group), releasing the data directory.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const SOURCE = fileURLToPath(new URL('..', import.meta.url));
// A first build on a busy two-core machine takes a while; every wait below still has this deadline.
const START_DEADLINE_MS = 300_000;
const STOP_DEADLINE_MS = 30_000;

const scratch = mkdtempSync(join(tmpdir(), 'mindbot-launch-dev-'));
const clone = join(scratch, 'mindbot');
const dataDir = join(scratch, 'data', 'pglite');

/** The committed tree, as `git clone` gives it (a plain copy without the ignored directories when not in git). */
function freshClone(): void {
  const inGit = spawnSync('git', ['-C', SOURCE, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).stdout.trim() === 'true';
  if (inGit) {
    const cloned = spawnSync('git', ['clone', '--quiet', '--no-hardlinks', SOURCE, clone], { encoding: 'utf8' });
    assert.equal(cloned.status, 0, cloned.stderr);
  } else {
    const ignored = new Set(['node_modules', 'dist', 'data', 'logs', 'run', 'test-artifacts', '.env']);
    cpSync(SOURCE, clone, { recursive: true, filter: (path) => !ignored.has(path.slice(SOURCE.length).split('/')[0] ?? '') });
  }
  symlinkSync(realpathSync(join(SOURCE, 'node_modules')), join(clone, 'node_modules'));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

interface Proc { pid: number; ppid: number; started: string; cwd: string | null }

function processes(): Proc[] {
  const all: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let cwd: string | null = null;
      try { cwd = readlinkSync(`/proc/${name}/cwd`); } catch { /* another user's process */ }
      all.push({ pid: Number(name), ppid: Number(fields[1]), started: fields[19] ?? '', cwd });
    } catch { /* ended while we looked */ }
  }
  return all;
}

/** The process and everything below it. */
function tree(root: number): Proc[] {
  const all = processes();
  const found = all.filter((p) => p.pid === root);
  for (let i = 0; i < found.length; i++) found.push(...all.filter((p) => p.ppid === found[i]!.pid));
  return found;
}

function stillRunning(recorded: Proc[]): Proc[] {
  const now = new Map(processes().map((p) => [p.pid, p]));
  return recorded.filter((p) => now.get(p.pid)?.started === p.started);
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>, output: () => string): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    // Not up yet (connection refused) is waited out; a failed assertion is not.
    const value = await probe().catch((error: unknown) => {
      if (error instanceof assert.AssertionError) throw error;
      return undefined;
    });
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${what}: not within ${deadlineMs / 1000}s; launch.sh said:\n${output()}`);
}

interface Dev { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: string | null }> }

function startDev(port: number, dbPort: number): Dev {
  const child = spawn('./launch.sh', ['dev'], {
    cwd: clone,
    // A process group of its own, like a terminal's job: Ctrl-C is SIGINT to the whole group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Only what a new user's shell has: no DATABASE_URL, Supabase or LiveKit settings from the test run.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? scratch, TMPDIR: scratch, LANG: 'C.UTF-8',
      MINDBOT_SKIP_INSTALL: '1', PORT: String(port), EMBEDDED_DB_PORT: String(dbPort), EMBEDDED_DATA_DIR: dataDir,
      DEV_STOP_SECONDS: '10',
    },
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { text += chunk.toString(); });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => text.slice(-6000), exited };
}

async function pageOf(base: string): Promise<{ html: string; assets: string[] } | undefined> {
  const response = await fetch(`${base}/`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) return undefined;
  const html = await response.text();
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  return html.includes('<div id="root"></div>') && assets.length > 0 ? { html, assets } : undefined;
}

async function healthy(base: string): Promise<true | undefined> {
  const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
  const body = await response.json() as { status?: string; database?: string };
  return response.status === 200 && body.status === 'ok' && body.database === 'ok' ? true : undefined;
}

/** Runs dev until it serves; returns what it started (processes, ports) for the stop assertions. */
async function serving(dev: Dev, port: number, dbPort: number) {
  const base = `http://127.0.0.1:${port}`;
  const page = await until('`/` serves the app', START_DEADLINE_MS, () => pageOf(base), dev.output);
  await until('/health is ok', 30_000, () => healthy(base), dev.output);
  assert.ok(await listening(dbPort), 'the embedded database listens on its port');
  const lock = JSON.parse(readFileSync(`${dataDir}.lock`, 'utf8')) as { pid: number; url: string };
  assert.match(lock.url, new RegExp(`:${dbPort}/`));
  const started = tree(dev.child.pid!);
  // The launcher, the web build, the database, the sidecar, and a log pipe for each.
  assert.ok(started.length >= 7, `dev runs its children (found ${started.length})`);
  assert.ok(started.some((p) => p.pid === lock.pid), 'the database is one of them');
  return { base, page, started };
}

async function assertAllStopped(dev: Dev, started: Proc[], ports: number[]): Promise<void> {
  const exit = await Promise.race([
    dev.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`launch.sh still runs:\n${dev.output()}`)), STOP_DEADLINE_MS)),
  ]);
  assert.deepEqual(exit, { code: 0, signal: null }, dev.output());
  // Children that outlive the launcher are reparented: look for them by pid and by working directory too.
  await until('every child has ended', 5000, async () => (stillRunning(started).length === 0 ? true : undefined), () =>
    `still running: ${JSON.stringify(stillRunning(started))}\n${dev.output()}`);
  assert.deepEqual(processes().filter((p) => p.cwd?.startsWith(clone)), [], 'no process runs in the clone');
  for (const port of ports) assert.equal(await listening(port), false, `port ${port} is closed`);
  assert.equal(existsSync(`${dataDir}.lock`), false, 'the data directory lock is released');
}

describe('./launch.sh dev on a fresh clone', { timeout: 2 * START_DEADLINE_MS + 4 * STOP_DEADLINE_MS }, () => {
  before(freshClone);
  after(() => {
    // Should an assertion fail, nothing of the test outlives it.
    for (const p of processes().filter((q) => q.cwd?.startsWith(clone))) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  it('serves the app and /health, keeps serving `/` through a rebuild, and stops everything on SIGTERM', async () => {
    assert.equal(existsSync(join(clone, 'dist')), false, 'a fresh clone has no build');
    const [port, dbPort] = [await freePort(), await freePort()];
    const dev = startDev(port, dbPort);
    try {
      const { base, page, started } = await serving(dev, port, dbPort);
      for (const asset of page.assets) {
        assert.equal((await fetch(`${base}${asset}`)).status, 200, asset);
      }

      // An edit to the web app: `/` answers the app at every moment of the rebuild, then the new build.
      appendFileSync(join(clone, 'src/web/styles.css'), '\n.launch-dev-test-rebuild { outline: 1px solid red; }\n');
      const rebuilt = await until('the rebuild is served', START_DEADLINE_MS, async () => {
        const response = await fetch(`${base}/`, { signal: AbortSignal.timeout(10_000) }).catch((error: unknown) => {
          throw new assert.AssertionError({ message: `\`/\` did not answer during the rebuild: ${String(error)}` });
        });
        assert.equal(response.status, 200, 'a rebuild never makes `/` fail');
        const current = await pageOf(base);
        assert.ok(current, 'a rebuild never serves a half-written page');
        for (const asset of current.assets) assert.equal((await fetch(`${base}${asset}`)).status, 200, `${asset} loads`);
        return current.html !== page.html ? current : undefined;
      }, dev.output);
      const css = rebuilt.assets.filter((a) => a.endsWith('.css'));
      const styles = await Promise.all(css.map(async (a) => (await fetch(`${base}${a}`)).text()));
      assert.ok(styles.some((s) => s.includes('launch-dev-test-rebuild')), 'the new build carries the edit');

      const running = [...started, ...tree(dev.child.pid!)];
      process.kill(dev.child.pid!, 'SIGTERM');
      await assertAllStopped(dev, running, [port, dbPort]);
    } finally {
      if (dev.child.exitCode === null) process.kill(-dev.child.pid!, 'SIGKILL');
    }
  });

  it('starts again on the same data directory and stops everything on Ctrl-C (SIGINT to the process group)', async () => {
    const [port, dbPort] = [await freePort(), await freePort()];
    const dev = startDev(port, dbPort);
    try {
      const { started } = await serving(dev, port, dbPort);
      process.kill(-dev.child.pid!, 'SIGINT');
      await assertAllStopped(dev, started, [port, dbPort]);
    } finally {
      if (dev.child.exitCode === null) process.kill(-dev.child.pid!, 'SIGKILL');
    }
  });
});
