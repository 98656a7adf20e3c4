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

async function simulate(db: TestDatabase, calls: number, minutes: number) {
  const users = Array.from({ length: calls }, () => randomUUID());
  await db.sql.query(`select public.grant_time_card(u, 'enterprise_50h', null, 'bench-calls:' || u) from unnest($1::uuid[]) u`, [users]);
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
    const { rows: [billed] } = await db.sql.query<{ seconds: number; calls: number }>(
      `select coalesce(sum(billed_seconds), 0)::int as seconds, count(*)::int as calls
         from public.voice_sessions where user_id = any($1::uuid[]) and status = 'ended'`, [users]);
    return {
      calls,
      minutes,
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
  const runs = [await simulate(db, 100, minutes), await simulate(db, 1000, minutes)];
  const [small, large] = runs as [Awaited<ReturnType<typeof simulate>>, Awaited<ReturnType<typeof simulate>>];
  const figures = Object.fromEntries(runs.map((r) => [`calls_${r.calls}`, {
    queries_per_call_increment: Math.round(r.queries_per_call_increment * 1000) / 1000,
    meter_p50_ms: Math.round(r.meter.p50 * 1000) / 1000,
    meter_p99_ms: Math.round(r.meter.p99 * 1000) / 1000,
    join_p50_ms: Math.round(r.join.p50 * 1000) / 1000,
    join_p99_ms: Math.round(r.join.p99 * 1000) / 1000,
    ended_calls: r.ended_calls,
    billed_seconds: r.billed_seconds,
  }]));
  const targets = {
    at_most_one_query_per_call_increment: { value: large.queries_per_call_increment, limit: CALL_TARGETS.queriesPerCallIncrement,
      pass: runs.every((r) => r.queries_per_call_increment <= CALL_TARGETS.queriesPerCallIncrement) },
    meter_p99_under_5ms_at_1000_calls: { value: large.meter.p99, limit: CALL_TARGETS.meterP99Ms, pass: large.meter.p99 < CALL_TARGETS.meterP99Ms },
  };
  const report = (r: Report) => {
    r.section(`Calls through the call controller (${minutes} minutes each, arriving over one minute, pool of 16)`);
    for (const run of [small, large]) {
      r.row(`${run.calls} calls: billing queries per billed minute`, run.queries_per_call_increment, '',
        `${run.meter_queries} starts and meters, plus ${run.settles} settles (one per call)`)
        .row(`${run.calls} calls: meter p50 / p99`, `${run.meter.p50.toFixed(2)} / ${run.meter.p99.toFixed(2)}`, 'ms', `${run.calls} calls active`)
        .row(`${run.calls} calls: join + greeting balance p50 / p99`, `${run.join.p50.toFixed(2)} / ${run.join.p99.toFixed(2)}`, 'ms', 'billing\'s share of a call\'s start')
        .row(`${run.calls} calls: ended / billed`, `${run.ended_calls} / ${run.billed_seconds}`, 's');
    }
  };
  return { figures, targets, report };
}
