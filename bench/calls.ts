// Issue 4's billing figures: N simulated calls driven through the real call controller against local Postgres,
// on a fast clock. The calls start spread over one increment, as callers arrive, so N calls are active at
// once and each is metered once a minute; timers due at the same instant still fire together.
import { randomUUID } from 'node:crypto';
import { CallController, type Timers } from '../src/agent/call-controller.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { TestClock, type TestDatabase } from '../tests/helpers/test-db.ts';
import type { Report } from './report.ts';
import { summarize } from './stats.ts';

export const CALL_TARGETS = { queriesPerCallIncrement: 1, meterP99Ms: 5 };

/** Fires every timer due at the next instant together (as real timers would), then moves to the next. */
class BatchTimers implements Timers {
  private pending = new Map<number, { at: number; fn: () => unknown }>();
  private nextId = 1;
  constructor(private readonly clock: TestClock) {}
  setTimeout(fn: () => unknown, ms: number): number {
    const id = this.nextId++;
    this.pending.set(id, { at: this.clock.now().getTime() + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  async advanceTo(end: number): Promise<void> {
    for (;;) {
      const next = Math.min(...[...this.pending.values()].map((p) => p.at));
      if (!Number.isFinite(next) || next > end) break;
      const due = [...this.pending].filter(([, p]) => p.at === next);
      for (const [id] of due) this.pending.delete(id);
      if (next > this.clock.now().getTime()) this.clock.set(new Date(next));
      await Promise.all(due.map(([, p]) => p.fn()));
    }
    if (end > this.clock.now().getTime()) this.clock.set(new Date(end));
  }
}

/** Counts every store call and times each meter. */
function instrumented(store: BillingStore) {
  const counts = new Map<string, number>();
  const meterMs: number[] = [];
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return async (...args: unknown[]) => {
        counts.set(name, (counts.get(name) ?? 0) + 1);
        const started = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          if (name === 'meterSession') meterMs.push(performance.now() - started);
        }
      };
    },
  });
  return { store: proxy, counts, meterMs };
}

/**
 * Puts every user on a subscription (2 minutes included, then 5 c/min under a cap) with a Stripe customer, and
 * gives every other user one minute on a card: their calls are paid by included seconds, then the card, then the
 * rate, all inside the same start and meter calls (migrations/017).
 */
async function subscribeAll(db: TestDatabase, users: string[]): Promise<void> {
  const key = `bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const { rows: [plan] } = await db.sql.query<{ id: string }>(
    `insert into public.plans (key, version, kind, name, included_seconds, default_cap_cents, max_cap_cents)
     values ($1, 1, 'subscription', 'Bench subscription', 120, 100000, 100000) returning id`, [key]);
  await db.sql.query(`insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute) values ($1, 1, null, 5)`,
    [plan!.id]);
  await db.sql.query(`insert into public.stripe_customers (user_id, customer_id) select u, 'cus_' || replace(u::text, '-', '')
                        from unnest($1::uuid[]) u`, [users]);
  await db.sql.query(
    `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end, spending_cap_cents)
     select u, $2, 'active', '2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z', 100000 from unnest($1::uuid[]) u`, [users, plan!.id]);
  await db.sql.query(`select public.adjust_user_time(u, 60, 'bench card minute', 'bench-calls:' || u, '2026-10-01T08:00:00Z')
                        from unnest($1::uuid[]) with ordinality as t(u, n) where n % 2 = 0`, [users]);
}

export async function simulateCalls(db: TestDatabase, calls: number, minutes: number, pricing: 'prepaid' | 'postpaid' = 'prepaid') {
  const users = Array.from({ length: calls }, () => randomUUID());
  if (pricing === 'postpaid') await subscribeAll(db, users);
  else await db.sql.query(`select public.grant_time_card(u, 'enterprise_50h', null, 'bench-calls:' || u) from unnest($1::uuid[]) u`, [users]);
  const clock = new TestClock('2026-10-01T09:00:00Z');
  const base = db.store(clock.now, { poolSize: 16 });
  const { store, counts, meterMs } = instrumented(base);
  const timers = new BatchTimers(clock);
  try {
    const controllers = users.map(() => new CallController({ store, clock: clock.now, timers }));
    // Start cost: join (start the metered session) plus the balance read the greeting needs.
    const joinMs: number[] = [];
    const t0 = clock.now().getTime();
    controllers.forEach((controller, i) => {
      timers.setTimeout(async () => {
        const started = performance.now();
        await controller.join({ userId: users[i]!, externalKey: `bench:${users[i]}`, roomName: `bench-${i}` });
        await store.getBalance(users[i]!);
        joinMs.push(performance.now() - started);
      }, Math.floor((i * 60_000) / calls));
    });
    // Everyone has talked `minutes` minutes when the last caller has.
    await timers.advanceTo(t0 + 60_000 + minutes * 60_000 - 1);
    await Promise.all(controllers.map((c) => c.leave('caller_left')));
    const meterQueries = (counts.get('startSession') ?? 0) + (counts.get('meterSession') ?? 0);
    const { rows: [billed] } = await db.sql.query<{ seconds: number; calls: number; plan_seconds: number }>(
      `select coalesce(sum(billed_seconds), 0)::int as seconds, count(*)::int as calls,
              (select coalesce(sum(u.included_seconds + u.rated_seconds), 0)::int from public.usage_charges u
                where u.user_id = any($1::uuid[])) as plan_seconds
         from public.voice_sessions where user_id = any($1::uuid[]) and status = 'ended'`, [users]);
    return {
      calls,
      minutes,
      pricing,
      plan_seconds: billed!.plan_seconds,
      meter_queries: meterQueries,
      settles: counts.get('endSession') ?? 0,
      // Each call-minute is one increment at the default rules; the settle at the end is one more per call.
      queries_per_call_increment: meterQueries / (billed!.seconds / 60),
      meter: summarize(meterMs),
      join: summarize(joinMs),
      ended_calls: billed!.calls,
      billed_seconds: billed!.seconds,
    };
  } finally {
    await base.close();
  }
}

export async function measureCalls(db: TestDatabase, minutes = 5) {
  const runs = [await simulateCalls(db, 100, minutes), await simulateCalls(db, 1000, minutes),
    await simulateCalls(db, 1000, minutes, 'postpaid')];
  const [small, large] = runs as [Awaited<ReturnType<typeof simulateCalls>>, Awaited<ReturnType<typeof simulateCalls>>];
  const figures = Object.fromEntries(runs.map((r) => [`calls_${r.calls}${r.pricing === 'postpaid' ? '_postpaid' : ''}`, {
    queries_per_call_increment: Math.round(r.queries_per_call_increment * 1000) / 1000,
    meter_p50_ms: Math.round(r.meter.p50 * 1000) / 1000,
    meter_p99_ms: Math.round(r.meter.p99 * 1000) / 1000,
    join_p50_ms: Math.round(r.join.p50 * 1000) / 1000,
    join_p99_ms: Math.round(r.join.p99 * 1000) / 1000,
    ended_calls: r.ended_calls,
    billed_seconds: r.billed_seconds,
    plan_seconds: r.plan_seconds,
  }]));
  const targets = {
    at_most_one_query_per_call_increment: { value: large.queries_per_call_increment, limit: CALL_TARGETS.queriesPerCallIncrement,
      pass: runs.every((r) => r.queries_per_call_increment <= CALL_TARGETS.queriesPerCallIncrement) },
    meter_p99_under_5ms_at_1000_calls: { value: large.meter.p99, limit: CALL_TARGETS.meterP99Ms, pass: large.meter.p99 < CALL_TARGETS.meterP99Ms },
  };
  const report = (r: Report) => {
    r.section(`Calls through the call controller (${minutes} minutes each, arriving over one minute, pool of 16)`);
    for (const run of runs) {
      const label = `${run.calls}${run.pricing === 'postpaid' ? ' postpaid' : ''} calls`;
      r.row(`${label}: billing queries per billed minute`, run.queries_per_call_increment, '',
        `${run.meter_queries} starts and meters, plus ${run.settles} settles (one per call)`)
        .row(`${label}: meter p50 / p99`, `${run.meter.p50.toFixed(2)} / ${run.meter.p99.toFixed(2)}`, 'ms', `${run.calls} calls active`)
        .row(`${label}: join + greeting balance p50 / p99`, `${run.join.p50.toFixed(2)} / ${run.join.p99.toFixed(2)}`, 'ms', 'billing\'s share of a call\'s start')
        .row(`${label}: ended / billed`, `${run.ended_calls} / ${run.billed_seconds}`, 's',
          run.pricing === 'postpaid' ? `${run.plan_seconds} s paid by the plan (included or rated), the rest by cards` : '');
    }
  };
  return { figures, targets, report };
}
