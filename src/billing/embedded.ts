import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { migrate, type MigrationResult } from './migrate.ts';
import { pgliteClient } from './sql-client.ts';

// The zero-setup database: PGlite persisted on disk and served over the Postgres wire protocol on loopback,
// so the sidecar and every agent job process reach it with plain node-postgres.
//
// PGlite does not stop a second process from opening the same data directory (the last writer silently
// wins), so the directory is guarded by a lock file that also tells other processes where it is served.

export interface EmbeddedDatabase {
  url: string;
  migrations: MigrationResult;
  stop(): Promise<void>;
}

interface LockInfo {
  pid: number;
  url: string | null;
}

export function lockPath(dataDir: string): string {
  return `${resolve(dataDir)}.lock`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readLock(dataDir: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(lockPath(dataDir), 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : null;
  } catch {
    return null;
  }
}

/** The URL of the embedded database another live process is serving, if any. */
export function runningEmbeddedUrl(dataDir: string): string | null {
  const lock = readLock(dataDir);
  return lock && lock.url && isAlive(lock.pid) ? lock.url : null;
}

function takeLock(dataDir: string): void {
  const path = lockPath(dataDir);
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, JSON.stringify({ pid: process.pid, url: null } satisfies LockInfo));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readLock(dataDir);
      if (holder && isAlive(holder.pid)) {
        throw new Error(
          `the embedded database in ${dataDir} is already open in process ${holder.pid}` +
            (holder.url ? ` (served at ${holder.url})` : ''),
        );
      }
      rmSync(path, { force: true }); // left behind by a process that died
    }
  }
  throw new Error(`could not lock ${path}`);
}

export async function startEmbeddedDatabase(options: {
  dataDir: string;
  host?: string;
  port?: number;
}): Promise<EmbeddedDatabase> {
  const host = options.host ?? '127.0.0.1';
  takeLock(options.dataDir);
  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    mkdirSync(options.dataDir, { recursive: true });
    db = await PGlite.create(options.dataDir);
    const migrations = await migrate(pgliteClient(db));
    // Several connections are multiplexed onto PGlite's one backend, a transaction at a time.
    server = new PGLiteSocketServer({ db, host, port: options.port ?? 0, maxConnections: 64 });
    await server.start();
    const url = `postgres://postgres@${server.getServerConn()}/postgres`;
    writeFileSync(lockPath(options.dataDir), JSON.stringify({ pid: process.pid, url } satisfies LockInfo));
    const opened = { db, server };
    return {
      url,
      migrations,
      async stop() {
        await opened.server.stop();
        await opened.db.close();
        rmSync(lockPath(options.dataDir), { force: true });
      },
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    rmSync(lockPath(options.dataDir), { force: true });
    throw error;
  }
}
