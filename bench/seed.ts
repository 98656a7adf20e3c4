// Seeding and checking helpers shared by the benchmark phases.
import type { SqlClient } from '../src/billing/sql-client.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { newUserId } from '../tests/helpers/test-db.ts';

/**
 * Creates users with plenty of time, through the store as production would: a bought enterprise_50h card
 * (216,000 s) and a manual credit of an hour (a second card), so deductions walk a real FIFO card list.
 */
export async function seedUsers(store: BillingStore, count: number, tag: string): Promise<string[]> {
  const users: string[] = [];
  for (let i = 0; i < count; i++) {
    const userId = newUserId();
    await store.grantCard({ userId, tierId: 'enterprise_50h', idempotencyKey: `bench:${tag}:grant:${i}` });
    await store.adjustUserTime({ userId, seconds: 3600, reason: 'benchmark credit', idempotencyKey: `bench:${tag}:adj:${i}` });
    users.push(userId);
  }
  return users;
}

/** Sum of remaining seconds over every card of each user (exhausted cards count as 0). */
export async function cardBalances(sql: SqlClient, users: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await sql.query<{ user_id: string; seconds: string }>(
    `select user_id::text as user_id, sum(remaining_seconds)::bigint as seconds
       from public.time_cards where user_id = any($1::uuid[]) group by user_id`,
    [users],
  );
  const out = new Map<string, number>(users.map((u) => [u, 0]));
  for (const r of rows) out.set(r.user_id, Number(r.seconds));
  return out;
}

/** Cards of these users whose remaining seconds differ from the sum of their ledger rows. */
export async function ledgerMismatchedCards(sql: SqlClient, users: readonly string[] | null): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `select count(*)::int as n from (
       select c.id
         from public.time_cards c left join public.ledger_entries l on l.card_id = c.id
        where $1::uuid[] is null or c.user_id = any($1::uuid[])
        group by c.id
       having c.remaining_seconds <> coalesce(sum(l.seconds), 0)) m`,
    [users],
  );
  return rows[0]!.n;
}

/** Seconds the ledger recorded as usage for the deductions whose idempotency keys start with prefix. */
export async function ledgerUsageSeconds(sql: SqlClient, keyPrefix: string): Promise<number> {
  const { rows } = await sql.query<{ s: string }>(
    `select coalesce(-sum(seconds), 0)::bigint as s from public.ledger_entries
      where kind = 'usage' and operation_key like $1`,
    [`deduct:${keyPrefix}%`],
  );
  return Number(rows[0]!.s);
}

/** Idempotent operations remembered for keys starting with prefix. */
export async function operationsRecorded(sql: SqlClient, keyPrefix: string): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `select count(*)::int as n from billing_private.operations where key like $1`,
    [`${keyPrefix}%`],
  );
  return rows[0]!.n;
}

export interface Drift {
  /** Seconds answered as deducted that the balance does not show as gone (lost updates: free time). */
  lost: number;
  /** Seconds gone from the balance that no answer accounts for (an overcharge). */
  extra: number;
}

/** Compares each user's balance drop with the seconds the calls answered as deducted. */
export function drift(before: Map<string, number>, after: Map<string, number>, answered: Map<string, number>): Drift {
  let lost = 0;
  let extra = 0;
  for (const [user, b] of before) {
    const dropped = b - (after.get(user) ?? 0);
    const said = answered.get(user) ?? 0;
    if (said > dropped) lost += said - dropped;
    else extra += dropped - said;
  }
  return { lost, extra };
}

/** The current WAL position, to measure how many WAL bytes a run wrote (the whole cluster's, so approximate). */
export async function walPosition(sql: SqlClient): Promise<string> {
  const { rows } = await sql.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn');
  return rows[0]!.lsn;
}

export async function walBytesSince(sql: SqlClient, from: string): Promise<number> {
  const { rows } = await sql.query<{ n: string }>('select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint as n', [from]);
  return Number(rows[0]!.n);
}
