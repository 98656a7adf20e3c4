// The background jobs' work in bounded batches. Each store call below is one SQL function call: one
// transaction that claims at most `limit` rows (SKIP LOCKED), only try-locks their owners and commits before
// the next batch starts. So a job holds one batch's locks at a time (thousands of advisory locks in one
// transaction would exhaust PostgreSQL's lock table), a meter waits at most for one batch, and several
// sidecars running the same job share its work instead of queueing behind each other.
import type { BillingStore } from '../billing/store.ts';

export interface BatchOptions {
  /** Rows per batch (per transaction). Default 500. */
  limit?: number;
  /** A bound on one run; what is left waits for the next run. Default 1000 batches. */
  maxBatches?: number;
  /** Checked before each batch: the sidecar is stopping. */
  shouldStop?: () => boolean;
  /** Called after each committed batch (tests watch the work go on). */
  onBatch?: (batch: number) => unknown;
}

export interface ReapTotals { batches: number; reaped: number; skipped: number }
export interface ExpiryTotals { batches: number; expired: number; forfeitedSeconds: number; skipped: number }
export interface ScanTotals {
  batches: number; users: number; lowBalance: number; cardExpiring: number; balanceExhausted: number;
  /** Where a run stopped by maxBatches (or a stop) left off; null when it went through every owner. */
  nextUser: string | null;
}

const DEFAULT_LIMIT = 500;
const DEFAULT_MAX_BATCHES = 1000;

async function inBatches<T>(options: BatchOptions, batch: (limit: number) => Promise<T>, goOn: (result: T) => boolean): Promise<number> {
  const limit = options.limit ?? DEFAULT_LIMIT;
  const maxBatches = options.maxBatches ?? DEFAULT_MAX_BATCHES;
  let batches = 0;
  while (batches < maxBatches && !options.shouldStop?.()) {
    const result = await batch(limit);
    batches += 1;
    await options.onBatch?.(batches);
    if (!goOn(result)) break;
  }
  return batches;
}

/** Settles every stale call, a batch at a time. A batch that settled nothing (all busy) ends the run. */
export async function reapInBatches(store: BillingStore, maxSilenceSeconds: number, options: BatchOptions = {}): Promise<ReapTotals> {
  const totals: ReapTotals = { batches: 0, reaped: 0, skipped: 0 };
  totals.batches = await inBatches(options, (limit) => store.reapStaleSessions(maxSilenceSeconds, { limit }), (run) => {
    totals.reaped += run.reaped_sessions;
    totals.skipped += run.skipped_sessions;
    return run.more && run.reaped_sessions > 0;
  });
  return totals;
}

/** Expires every card past its date, a batch at a time. */
export async function expireInBatches(store: BillingStore, options: BatchOptions = {}): Promise<ExpiryTotals> {
  const totals: ExpiryTotals = { batches: 0, expired: 0, forfeitedSeconds: 0, skipped: 0 };
  totals.batches = await inBatches(options, (limit) => store.expireCards({ limit }), (run) => {
    totals.expired += run.expired_cards;
    totals.forfeitedSeconds += run.forfeited_seconds;
    totals.skipped += run.skipped_cards;
    return run.more && run.expired_cards > 0;
  });
  return totals;
}

/**
 * Scans card owners for notices, a batch of owners at a time in id order, from `afterUser` (null: the first)
 * to the last, unless maxBatches or a stop comes first: then `nextUser` is where the next run goes on.
 */
export async function scanNotificationsInBatches(
  store: BillingStore, scan: { lowBalanceSeconds?: number; expiringWithinDays?: number },
  options: BatchOptions & { afterUser?: string | null } = {},
): Promise<ScanTotals> {
  const totals: ScanTotals = { batches: 0, users: 0, lowBalance: 0, cardExpiring: 0, balanceExhausted: 0, nextUser: options.afterUser ?? null };
  totals.batches = await inBatches(options, (limit) => store.enqueueBalanceNotifications({ ...scan, afterUser: totals.nextUser, limit }),
    (run) => {
      totals.users += run.users_scanned;
      totals.lowBalance += run.low_balance;
      totals.cardExpiring += run.card_expiring;
      totals.balanceExhausted += run.balance_exhausted;
      totals.nextUser = run.next_user;
      return totals.nextUser !== null;
    });
  return totals;
}
