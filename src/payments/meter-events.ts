// Delivers the meter event outbox (public.meter_event_outbox) to Stripe Billing Meters.
//
// Exactly-once counting rests on two things: the SQL leases (claim_meter_events, migration 019) keep two
// senders from working on one row at the same time, and Stripe's identifier dedupe covers the one gap the
// leases cannot: a sender that posted an event and died (or lost its lease) before reporting it. The row comes
// back after its lease, is posted again with the same identifier, and Stripe refuses it with
// "An event already exists with identifier …": that refusal means Stripe has the event, so it is recorded as
// delivered. Any other failure is reported as such and retried later with backoff (the SQL decides when).
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import Stripe from 'stripe';
import type { ClaimedMeterEvent, MeterEventResult } from '../billing/meter-outbox.ts';
import type { BillingStore } from '../billing/store.ts';

export interface MeterSenderOptions {
  /** Rows claimed per batch (one claim and one report per batch). */
  batchSize: number;
  /** Requests to Stripe in flight at once. */
  concurrency: number;
  /** How long a claim is ours; a sender that dies leaves its rows to others after this long. */
  leaseSeconds: number;
  /** Each request to Stripe is abandoned (and retried later) after this long. */
  timeoutMs: number;
  /** Who holds the leases (default: host, pid and a random part). */
  owner?: string;
  /** A bound on one run: batches claimed (default 100). What is left waits for the next run. */
  maxBatches?: number;
  /** Checked before each batch and each request: the process is stopping. */
  shouldStop?: () => boolean;
}

export interface MeterSendTotals {
  batches: number;
  claimed: number;
  delivered: number;
  /** Of the delivered: Stripe already had the identifier (a retry after a crash or a lost answer). */
  alreadyInStripe: number;
  failed: number;
  /** Claimed but not sent because the lease was about to run out: they come back after it. */
  leftToLease: number;
}

const DUPLICATE_IDENTIFIER = /an event already exists with identifier/i;

/** Stripe's answer to an identifier it has seen: the event is there already. */
export function isDuplicateIdentifierError(error: unknown): boolean {
  return error instanceof Stripe.errors.StripeInvalidRequestError && error.statusCode === 400
    && DUPLICATE_IDENTIFIER.test(error.message);
}

export function defaultSenderOwner(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

function describe(error: unknown): string {
  if (error instanceof Stripe.errors.StripeError) {
    return `${error.type}${error.statusCode ? ` HTTP ${error.statusCode}` : ''}${error.code ? ` ${error.code}` : ''}: ${error.message}`.slice(0, 1000);
  }
  return (error instanceof Error ? error.message : String(error)).slice(0, 1000);
}

async function sendOne(stripe: Stripe, event: ClaimedMeterEvent, timeoutMs: number): Promise<MeterEventResult & { duplicate?: boolean }> {
  try {
    await stripe.billing.meterEvents.create({
      event_name: event.event_name,
      identifier: event.identifier,
      timestamp: event.timestamp,
      payload: { stripe_customer_id: event.stripe_customer_id, value: String(event.value_seconds) },
    }, {
      timeout: timeoutMs,
      // The outbox retries with its own backoff; the client's retries would hold the lease meanwhile.
      maxNetworkRetries: 0,
    });
    return { identifier: event.identifier, delivered: true };
  } catch (error) {
    if (isDuplicateIdentifierError(error)) return { identifier: event.identifier, delivered: true, duplicate: true };
    return { identifier: event.identifier, delivered: false, error: describe(error) };
  }
}

/**
 * Sends one claimed batch with at most `concurrency` requests in flight. Events not started before the lease
 * is near its end are left out of the report: another sender may hold them by then.
 */
async function sendBatch(
  stripe: Stripe, events: ClaimedMeterEvent[], options: MeterSenderOptions, leaseEndsAt: number,
): Promise<{ results: (MeterEventResult & { duplicate?: boolean })[]; left: number }> {
  const results: (MeterEventResult & { duplicate?: boolean })[] = [];
  // A request may take timeoutMs; one started later than this could still be in flight when the lease ends.
  const lastStart = leaseEndsAt - options.timeoutMs - 1000;
  let next = 0;
  let left = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= events.length) return;
      if (Date.now() > lastStart || options.shouldStop?.()) {
        left++;
        continue;
      }
      results.push(await sendOne(stripe, events[index]!, options.timeoutMs));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, events.length)) }, worker));
  return { results, left };
}

/**
 * Claims and delivers due meter events, batch after batch, until none is due (or maxBatches, or a stop).
 * Safe with any number of senders at once.
 */
export async function sendDueMeterEvents(
  store: BillingStore, stripe: Stripe, log: Logger, options: MeterSenderOptions,
): Promise<MeterSendTotals> {
  const owner = options.owner ?? defaultSenderOwner();
  const maxBatches = options.maxBatches ?? 100;
  const totals: MeterSendTotals = { batches: 0, claimed: 0, delivered: 0, alreadyInStripe: 0, failed: 0, leftToLease: 0 };
  while (totals.batches < maxBatches && !options.shouldStop?.()) {
    const claimedAt = Date.now();
    const events = await store.claimMeterEvents({ limit: options.batchSize, leaseSeconds: options.leaseSeconds, owner });
    if (events.length === 0) break;
    totals.batches++;
    totals.claimed += events.length;
    const { results, left } = await sendBatch(stripe, events, options, claimedAt + options.leaseSeconds * 1000);
    totals.leftToLease += left;
    if (results.length > 0) {
      await store.reportMeterEvents({
        owner,
        results: results.map((r): MeterEventResult => (r.delivered
          ? { identifier: r.identifier, delivered: true }
          : { identifier: r.identifier, delivered: false, error: r.error })),
      });
    }
    const failures = results.filter((r) => !r.delivered);
    totals.delivered += results.length - failures.length;
    totals.alreadyInStripe += results.filter((r) => r.duplicate).length;
    totals.failed += failures.length;
    if (failures.length > 0) {
      // One line per batch: an outage fails every event the same way.
      const first = failures[0]!;
      log.warn({ failed: failures.length, of: events.length, firstIdentifier: first.identifier,
        error: first.delivered ? undefined : first.error }, 'meter events not delivered to Stripe; retried with backoff');
    }
    // A batch with failures ends the run: the failures are not due again yet, and Stripe is likely unwell.
    if (failures.length > 0 || left > 0 || events.length < options.batchSize) break;
  }
  return totals;
}
