// What one /metrics scrape costs the database at a small and a large ledger:
//   node --import tsx bench/metrics-scrape.ts
// For each size, on a fresh migrated database (dropped at the end): the ledger is filled to that many rows, the
// deltas of that load folded once, then each sample writes 50 ledger rows (untimed) and times one
// billing_metrics() call, as a scrape every few seconds would find it. For contrast, the recount that
// billing_metrics() did before migration 011 is timed at the same size.
// Environment: DATABASE_URL (admin URL, as the tests); BENCH_METRICS_ROWS (comma-separated sizes, default
// 1000,1000000); BENCH_SAMPLES (scrapes per size, default 200).
import { createPostgresDatabase, newUserId } from '../tests/helpers/test-db.ts';
import { msBetween, nowNs, round, summarize } from './stats.ts';

const sizes = (process.env.BENCH_METRICS_ROWS ?? '1000,1000000').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const samples = Math.max(1, Math.round(Number(process.env.BENCH_SAMPLES ?? 200)) || 200);
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

const RECOUNT = `select (select coalesce(sum(seconds), 0) from public.ledger_entries where kind = 'grant'),
  (select coalesce(-sum(seconds), 0) from public.ledger_entries where kind = 'usage'),
  (select count(*) from public.notifications where delivered_at is null and dead_at is null),
  (select count(*) from public.notifications where dead_at is not null)`;

/** Appends rows straight to the ledger (the trigger records their deltas as the billing functions' rows do). */
const appendRows = (count: number, from: number) => `
  insert into public.ledger_entries (card_id, user_id, kind, seconds, remaining_before, remaining_after, operation_key, idempotency_key)
  select c.id, c.user_id, case when i % 4 = 0 then 'grant' else 'usage' end, case when i % 4 = 0 then 60 else -60 end,
         60, case when i % 4 = 0 then 120 else 0 end, 'bench', 'bench:' || i
    from generate_series(${from}, ${from + count - 1}) i, (select id, user_id from public.time_cards limit 1) c`;

interface SizeFigures { rows: number; fillSeconds: number; firstFoldMs: number; scrape: ReturnType<typeof summarize>; recountMs: number }

async function measure(rows: number): Promise<SizeFigures> {
  const db = await createPostgresDatabase();
  const store = db.store();
  try {
    await store.grantCard({ userId: newUserId(), tierId: 'starter_1h', idempotencyKey: 'bench-card' });
    log(`${rows} ledger rows: filling`);
    const fillStart = nowNs();
    for (let done = 0; done < rows; done += 100_000) await db.sql.exec(appendRows(Math.min(100_000, rows - done), done));
    const fillSeconds = msBetween(fillStart, nowNs()) / 1000;
    await db.sql.exec('vacuum analyze public.ledger_entries');
    const foldStart = nowNs();
    await store.billingMetrics();
    const firstFoldMs = msBetween(foldStart, nowNs());
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      await db.sql.exec(appendRows(50, rows + i * 50));
      const t0 = nowNs();
      await store.billingMetrics();
      times.push(msBetween(t0, nowNs()));
    }
    const recountStart = nowNs();
    await db.sql.query(RECOUNT);
    const recountMs = msBetween(recountStart, nowNs());
    return { rows, fillSeconds: round(fillSeconds, 1), firstFoldMs: round(firstFoldMs, 1), scrape: summarize(times), recountMs: round(recountMs, 1) };
  } finally {
    await store.close();
    await db.close();
  }
}

const results: SizeFigures[] = [];
for (const rows of sizes) results.push(await measure(rows));
process.stdout.write('ledger rows   scrape p50 ms   scrape p99 ms   old recount ms   first scrape after the fill ms\n');
for (const r of results) {
  process.stdout.write(`${String(r.rows).padStart(11)}   ${String(r.scrape.p50).padStart(13)}   ${String(r.scrape.p99).padStart(13)}   `
    + `${String(r.recountMs).padStart(14)}   ${r.firstFoldMs}\n`);
}
process.stdout.write(`${JSON.stringify({ samples, results })}\n`);
