// Compares each user plan's metered seconds with what Stripe's meter counted (its meter event summaries),
// period by period, and keeps public.meter_drift up to date for the admin. The SQL (migration 019) picks the
// periods that are settled on our side (every event delivered, the last one a while ago, since Stripe
// aggregates asynchronously), counts our side and records the outcome; this module only asks Stripe.
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import type { MeterDrift } from '../billing/meter-outbox.ts';
import type { BillingStore } from '../billing/store.ts';

/** The one meter of voice time (docs/plans.md). */
export const VOICE_METER_EVENT_NAME = 'mindbot_voice_seconds';

export interface ReconciliationOptions {
  /** A period is compared only when its last event was delivered at least this long ago. */
  settleSeconds: number;
  /** Periods that ended longer ago than this are not compared again. */
  lookbackDays?: number;
  /** Periods compared per run (default 500). */
  limit?: number;
  eventName?: string;
  /** Requests to Stripe in flight at once (default 4). */
  concurrency?: number;
  shouldStop?: () => boolean;
  /** Told each period found in drift (a metric). */
  onDrift?: (drift: MeterDrift) => void;
}

export interface ReconciliationTotals {
  /** No meter with the event name exists in Stripe yet (nothing was compared). */
  meterMissing: boolean;
  compared: number;
  skipped: number;
  drift: MeterDrift[];
  resolved: number;
}

/** The active meter counting `eventName`, else any meter that ever did (events sent to it are counted there). */
export async function findMeterId(stripe: Stripe, eventName = VOICE_METER_EVENT_NAME): Promise<string | null> {
  const meters = await stripe.billing.meters.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 });
  const matching = meters.filter((m) => m.event_name === eventName);
  return (matching.find((m) => m.status === 'active') ?? matching[0])?.id ?? null;
}

/** Stripe's count of a customer's events on the meter in [start, end) (whole minutes, Unix seconds). */
export async function stripeMeteredSeconds(stripe: Stripe, meterId: string, customer: string, start: number, end: number): Promise<number> {
  const summaries = await stripe.billing.meters
    .listEventSummaries(meterId, { customer, start_time: start, end_time: end, limit: 100 })
    .autoPagingToArray({ limit: 10_000 });
  return summaries.reduce((sum, s) => sum + s.aggregated_value, 0);
}

export async function reconcileMeterUsage(
  store: BillingStore, stripe: Stripe, log: Logger, options: ReconciliationOptions,
): Promise<ReconciliationTotals> {
  const totals: ReconciliationTotals = { meterMissing: false, compared: 0, skipped: 0, drift: [], resolved: 0 };
  const periods = await store.meterReconciliationPeriods({
    settleSeconds: options.settleSeconds, lookbackDays: options.lookbackDays, limit: options.limit,
  });
  if (periods.length === 0) return totals;
  const meterId = await findMeterId(stripe, options.eventName);
  if (!meterId) {
    totals.meterMissing = true;
    log.warn({ eventName: options.eventName ?? VOICE_METER_EVENT_NAME, periods: periods.length },
      'no Stripe meter for the voice-time events: run ./launch.sh stripe-sync; reconciliation skipped');
    return totals;
  }
  const answered: (typeof periods[number] & { stripe_seconds: number })[] = [];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= periods.length || options.shouldStop?.()) return;
      const period = periods[index]!;
      const stripeSeconds = await stripeMeteredSeconds(stripe, meterId, period.stripe_customer_id, period.window_start, period.window_end);
      // Stripe sums decimals; ours are whole seconds, so a fraction is drift too (rounded up so it shows).
      answered.push({ ...period, stripe_seconds: Math.ceil(stripeSeconds) });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, periods.length)) }, worker));
  if (answered.length === 0) return totals;

  const recorded = await store.recordMeterReconciliation(answered);
  totals.compared = recorded.checked;
  totals.skipped = recorded.skipped;
  totals.resolved = recorded.resolved;
  totals.drift = recorded.drift;
  for (const drift of recorded.drift) {
    options.onDrift?.(drift);
    log.warn({ userPlanId: drift.user_plan_id, periodStart: drift.period_start, periodEnd: drift.period_end,
      ourSeconds: drift.our_seconds, stripeSeconds: drift.stripe_seconds, differenceSeconds: drift.stripe_seconds - drift.our_seconds },
    'meter drift: Stripe counted a different number of seconds than we billed for this period');
  }
  if (recorded.resolved > 0) log.info({ resolved: recorded.resolved }, 'meter drift resolved: Stripe and our totals agree again');
  return totals;
}
