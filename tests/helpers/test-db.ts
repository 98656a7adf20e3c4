import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { migrate } from '../../src/billing/migrate.ts';
import { pgPoolClient, pgliteClient, type SqlClient } from '../../src/billing/sql-client.ts';
import { sqlTransport } from '../../src/billing/sql-transport.ts';
import { RpcBillingStore, type BillingStore, type Clock } from '../../src/billing/store.ts';

export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database a test file owns: migrated, with a superuser connection for checks, dropped at the end. */
export interface TestDatabase {
  engine: 'postgres' | 'pglite';
  /** A superuser connection for assertions and for acting as API roles. */
  sql: SqlClient;
  /** A store on its own connection pool (or the PGlite instance), billing by the given clock. */
  store(clock?: Clock, options?: { poolSize?: number }): BillingStore;
  url: string | null;
  close(): Promise<void>;
}

function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createPostgresDatabase(options: {
  /** Runs on the empty database before the migrations (e.g. to set it up as a Supabase project is). */
  beforeMigrate?: (sql: SqlClient) => Promise<void>;
} = {}): Promise<TestDatabase> {
  const name = `mindbot_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const pools: pg.Pool[] = [];
  const newPool = (max: number) => {
    const pool = new pg.Pool({ connectionString: url, max });
    pool.on('error', () => {});
    pools.push(pool);
    return pool;
  };
  const sql = pgPoolClient(newPool(4));
  await options.beforeMigrate?.(sql);
  await migrate(sql);
  return {
    engine: 'postgres',
    sql,
    url,
    store: (clock, options) =>
      new RpcBillingStore(sqlTransport(pgPoolClient(newPool(options?.poolSize ?? 10)), { preparedStatements: true }), clock),
    async close() {
      await Promise.all(pools.map((p) => p.end().catch(() => {})));
      const dropper = new pg.Client({ connectionString: ADMIN_URL });
      await dropper.connect();
      try {
        await dropper.query(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

export async function createPgliteDatabase(): Promise<TestDatabase> {
  const db = await PGlite.create();
  const sql = pgliteClient(db);
  await migrate(sql);
  // Stores share the one PGlite instance; closing a store must not close it.
  const shared: SqlClient = { ...sql, close: async () => {} };
  return {
    engine: 'pglite',
    sql: shared,
    url: null,
    store: (clock) => new RpcBillingStore(sqlTransport(shared), clock),
    close: () => db.close(),
  };
}

/** A clock the test moves by hand; the SQL functions bill by it through p_now. */
export class TestClock {
  private current: Date;
  constructor(start: Date | string = '2026-01-01T00:00:00Z') {
    this.current = new Date(start);
  }
  readonly now: Clock = () => new Date(this.current);
  advance(seconds: number): Date {
    this.current = new Date(this.current.getTime() + seconds * 1000);
    return this.now();
  }
  set(at: Date | string): void {
    this.current = new Date(at);
  }
}

export function newUserId(): string {
  return crypto.randomUUID();
}

/** Cards whose remaining seconds differ from the sum of their ledger rows (must always be none). */
export async function ledgerMismatches(sql: SqlClient): Promise<unknown[]> {
  const { rows } = await sql.query(`
    select c.id, c.remaining_seconds, c.total_seconds,
           coalesce(sum(l.seconds), 0)::int as ledger_sum,
           coalesce(sum(l.seconds) filter (where l.kind in ('grant')), 0)::int as granted
      from public.time_cards c left join public.ledger_entries l on l.card_id = c.id
     group by c.id
    having c.remaining_seconds <> coalesce(sum(l.seconds), 0)
        or (c.source <> 'adjustment' and c.total_seconds <> coalesce(sum(l.seconds) filter (where l.kind = 'grant'), 0))`);
  return rows;
}

/** Runs fn as a Supabase API role, exactly as PostgREST does per request. */
export function asRole<T>(
  sql: SqlClient,
  role: 'anon' | 'authenticated' | 'service_role',
  claims: Record<string, unknown>,
  fn: (tx: SqlClient) => Promise<T>,
): Promise<T> {
  return sql.transaction(async (tx) => {
    await tx.query(`select set_config('request.jwt.claims', $1, true)`, [JSON.stringify({ role, ...claims })]);
    await tx.exec(`set local role ${role}`);
    return fn(tx);
  });
}

export async function countRows(sql: SqlClient, table: string): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(`select count(*)::int as n from ${table}`);
  return rows[0]!.n;
}
