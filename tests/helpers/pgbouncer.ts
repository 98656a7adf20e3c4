// A real PgBouncer (Debian's, installed by `./launch.sh test`) in transaction pool mode in front of the test
// PostgreSQL, as Supabase's pooler on port 6543 works: each transaction may run on another server connection,
// so session state (SET, session advisory locks, named prepared statements, LISTEN, temp tables) does not
// carry from one statement to the next.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PGBOUNCER_PATH = process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer';

export interface PgBouncer {
  port: number;
  /** The URL of `database` through the pooler. */
  url(database: string): string;
  /** What PgBouncer logged (startup, refused logins, errors). */
  log(): string;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts PgBouncer on a free loopback port, pooling every database of `serverUrl`'s server in transaction
 * mode with few server connections (so clients really share them). Stops it on close().
 */
export async function startPgBouncer(serverUrl: string, options: { poolSize?: number; deadlineMs?: number } = {}): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'mindbot-pgbouncer-'));
  const ini = join(dir, 'pgbouncer.ini');
  await writeFile(join(dir, 'userlist.txt'), `"${user}" ""\n`);
  await writeFile(ini, [
    '[databases]',
    `* = host=${server.hostname} port=${server.port || 5432}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize ?? 4}`,
    'max_client_conn = 500',
    'server_lifetime = 3600',
    '',
  ].join('\n'));
  // PgBouncer refuses to run as root; as root (a container, CI as root) it drops to an unprivileged user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    await chmod(dir, 0o755);
    await chmod(ini, 0o644);
    await chmod(join(dir, 'userlist.txt'), 0o644);
  }
  const child: ChildProcess = spawn(PGBOUNCER_PATH, [...(asRoot ? ['-u', 'nobody'] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | null = null;
  child.once('error', (error) => (spawnError = error));

  const url = (database: string) => `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  // Ready once a login through it reaches the server.
  const deadline = Date.now() + (options.deadlineMs ?? 10_000);
  for (;;) {
    if (spawnError || child.exitCode !== null) {
      await close();
      throw new Error(`pgbouncer did not start (${PGBOUNCER_PATH}; ./launch.sh test installs it): ${spawnError ?? output}`);
    }
    const client = new pg.Client({ connectionString: url(server.pathname.slice(1) || 'postgres'), connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) {
        await close();
        throw new Error(`pgbouncer did not accept a login within the deadline: ${String(error)}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, url, log: () => output, close };
}
