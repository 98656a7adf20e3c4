import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from './sql-client.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
  bootstrapped: boolean;
}

const MIGRATION_FILE = /^\d{3}_[a-z0-9_]+\.sql$/;

export async function listMigrations(dir = MIGRATIONS_DIR): Promise<{ name: string; sql: string; checksum: string }[]> {
  const names = (await readdir(dir)).filter((n) => MIGRATION_FILE.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/**
 * Applies what has not been applied yet, all in one transaction under an advisory lock, so two processes
 * starting at once cannot both migrate and a failure leaves nothing half-done. Running it again is a no-op.
 * An applied file that was edited afterwards is refused: a migration is history, fix forward with a new one.
 */
export async function migrate(db: SqlClient, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const migrations = await listMigrations(dir);
  const bootstrapSql = await readFile(join(dir, 'bootstrap', 'supabase-compat.sql'), 'utf8');
  return db.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(hashtextextended('mindbot.migrations', 0))`);
    // Supabase owns schema auth; elsewhere we provide the small part of it the migrations use.
    const { rows: auth } = await tx.query(`select 1 from pg_namespace where nspname = 'auth'`);
    const bootstrapped = auth.length === 0;
    if (bootstrapped) await tx.exec(bootstrapSql);
    await tx.exec(`
      create schema if not exists mindbot_meta;
      revoke all on schema mindbot_meta from public;
      create table if not exists mindbot_meta.schema_migrations (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
      );`);
    const { rows } = await tx.query<{ name: string; checksum: string }>(
      'select name, checksum from mindbot_meta.schema_migrations',
    );
    const done = new Map(rows.map((r) => [r.name, r.checksum]));
    const result: MigrationResult = { applied: [], alreadyApplied: [], bootstrapped };
    for (const migration of migrations) {
      const checksum = done.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`migration ${migration.name} was changed after it was applied; add a new migration instead`);
        }
        result.alreadyApplied.push(migration.name);
        continue;
      }
      await tx.exec(migration.sql);
      await tx.query('insert into mindbot_meta.schema_migrations (name, checksum) values ($1, $2)', [
        migration.name,
        migration.checksum,
      ]);
      result.applied.push(migration.name);
    }
    return result;
  });
}

/** The newest migration applied, for health checks. */
export async function migrationStatus(db: SqlClient, dir = MIGRATIONS_DIR): Promise<{ current: boolean; latest: string | null }> {
  const migrations = await listMigrations(dir);
  const { rows } = await db.query<{ name: string }>(
    `select name from mindbot_meta.schema_migrations order by name desc limit 1`,
  );
  const latest = rows[0]?.name ?? null;
  return { current: latest === (migrations.at(-1)?.name ?? null), latest };
}
