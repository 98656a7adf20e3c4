// Rows of postpaid billing written directly (superuser), as the metering SQL (017) and Stripe's webhooks would
// write them, so that the reads of 018 can be tested on their own. Follows docs/plans.md: one usage_charges
// row per charge step with amount_exact unrounded, identifier '<session_id>:<billed seconds before>'.
import type { SqlClient } from '../../src/billing/sql-client.ts';

export async function planId(sql: SqlClient, key: string, version?: number): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `select id from public.plans where key = $1 and ($2::integer is null or version = $2) order by version desc limit 1`,
    [key, version ?? null]);
  if (!rows[0]) throw new Error(`no plan ${key}`);
  return rows[0].id;
}

/** A current user plan (active unless told), for the period [start, end). */
export async function subscribe(sql: SqlClient, input: {
  userId: string; planId: string; start: string; end: string; capCents?: number;
  status?: 'pending' | 'active' | 'suspended'; suspendedReason?: string; invoiceUrl?: string;
}): Promise<string> {
  const status = input.status ?? 'active';
  const { rows } = await sql.query<{ id: string }>(
    `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end, spending_cap_cents,
                                    suspended_reason, suspended_invoice_url)
     values ($1, $2, $3, $4, $5, $6, $7, $8) returning id`,
    [input.userId, input.planId, status, status === 'pending' ? null : input.start, status === 'pending' ? null : input.end,
      input.capCents ?? 5000, status === 'suspended' ? input.suspendedReason ?? 'invoice payment failed' : null,
      status === 'suspended' ? input.invoiceUrl ?? null : null]);
  return rows[0]!.id;
}

/** An ended call of the user (billed seconds as given), started at `at`. */
export async function endedCall(sql: SqlClient, input: {
  userId: string; at: string; billedSeconds: number; agentName?: string; key?: string;
}): Promise<string> {
  const { rows } = await sql.query<{ id: string }>(
    `insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at, ended_at,
                                        billed_seconds, increment_seconds, minimum_seconds, end_reason, agent_name)
     values ($1, $2, 'room', 'ended', $3, $3, $3::timestamptz + make_interval(secs => $4), $4, 60, 60, 'caller_left', $5)
     returning id`,
    [input.userId, input.key ?? `fixture:${crypto.randomUUID()}`, input.at, input.billedSeconds, input.agentName ?? 'mindbot']);
  return rows[0]!.id;
}

/** One usage charge of a call (what 017's charging SQL writes). */
export async function charge(sql: SqlClient, input: {
  userId: string; userPlanId: string; planId: string; sessionId: string; periodStart: string; at: string;
  includedSeconds?: number; ratedSeconds?: number; amountExact: string; currency?: string; billedBefore: number;
}): Promise<void> {
  await sql.query(
    `insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds,
                                       rated_seconds, amount_exact, currency, identifier, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9, $10, $11)`,
    [input.userId, input.userPlanId, input.planId, input.sessionId, input.periodStart, input.includedSeconds ?? 0,
      input.ratedSeconds ?? 0, input.amountExact, input.currency ?? 'usd', `${input.sessionId}:${input.billedBefore}`, input.at]);
}
