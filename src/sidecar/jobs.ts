import type { Logger } from 'pino';
import type Stripe from 'stripe';
import { isBillingError } from '../billing/errors.ts';
import type { BillingStore } from '../billing/store.ts';
import { expireInBatches, reapInBatches, scanNotificationsInBatches } from './job-batches.ts';
import { deliverDueNotifications, type DeliveryOptions } from './notification-delivery.ts';
import { defaultSenderOwner, sendDueMeterEvents, type MeterSenderOptions } from '../payments/meter-events.ts';
import { reconcileMeterUsage } from '../payments/meter-reconciliation.ts';

/** Postpaid usage to Stripe Billing Meters: only with a Stripe client. */
export interface MeterJobSettings {
  stripe: Stripe;
  everySeconds: number;
  sender: Omit<MeterSenderOptions, 'shouldStop' | 'owner'>;
  reconcileEverySeconds: number;
  settleSeconds: number;
}

export interface JobSettings {
  expireEverySeconds: number;
  reapEverySeconds: number;
  /** A call whose meter has been silent this long belongs to a dead worker. */
  maxSilenceSeconds: number;
  notifyEverySeconds: number;
  lowBalanceSeconds: number;
  delivery: DeliveryOptions | null;
  /** Rows per batch, one transaction each (default 500). */
  batchSize?: number;
  meterEvents?: MeterJobSettings | null;
}

export interface RunningJobs {
  /** Runs every job once, now (tests, and the first run at start). */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The sidecar's periodic work: expire cards, reap calls of crashed workers, find what deserves a notice and
 * deliver the outbox. Safe with several sidecars: the SQL claims work with try-locks and SKIP LOCKED. Each
 * job works in bounded batches, each committed on its own (src/sidecar/job-batches.ts).
 */
export function startBackgroundJobs(store: BillingStore, log: Logger, settings: JobSettings): RunningJobs {
  const batches = { ...(settings.batchSize === undefined ? {} : { limit: settings.batchSize }), shouldStop: () => stopped };
  /** A notification scan cut short (a bound, a stop) goes on from here at its next turn. */
  let scanFrom: string | null = null;
  const jobs: { name: string; everySeconds: number; run: () => Promise<unknown> }[] = [
    { name: 'expire_cards', everySeconds: settings.expireEverySeconds, run: () => expireInBatches(store, batches) },
    { name: 'reap_sessions', everySeconds: settings.reapEverySeconds, run: () => reapInBatches(store, settings.maxSilenceSeconds, batches) },
    {
      name: 'notifications',
      everySeconds: settings.notifyEverySeconds,
      run: async () => {
        const found = await scanNotificationsInBatches(store, { lowBalanceSeconds: settings.lowBalanceSeconds }, { ...batches, afterUser: scanFrom });
        scanFrom = found.nextUser;
        // Without a URL the outbox keeps its rows until one is configured.
        const sent = settings.delivery ? await deliverDueNotifications(store, log, settings.delivery) : null;
        return { found, sent };
      },
    },
  ];
  const meter = settings.meterEvents;
  if (meter) {
    const owner = defaultSenderOwner();
    jobs.push(
      { name: 'meter_events', everySeconds: meter.everySeconds,
        run: () => sendDueMeterEvents(store, meter.stripe, log, { ...meter.sender, owner, shouldStop: () => stopped }) },
      { name: 'meter_reconciliation', everySeconds: meter.reconcileEverySeconds,
        run: () => reconcileMeterUsage(store, meter.stripe, log, { settleSeconds: meter.settleSeconds, shouldStop: () => stopped }) },
    );
  }
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let stopped = false;

  const runJob = async (job: (typeof jobs)[number]) => {
    try {
      const result = await job.run();
      log.debug({ job: job.name, result }, 'job ran');
    } catch (error) {
      // An outage is expected news, one line per turn; anything else is a fault worth its stack.
      if (isBillingError(error, 'storage_unavailable')) {
        log.warn({ job: job.name, code: error.code, reason: error.message }, 'job skipped: database unreachable; it runs again at its next turn');
      } else {
        log.error({ err: error, job: job.name }, 'job failed; it runs again at its next turn');
      }
    }
  };
  const schedule = (job: (typeof jobs)[number]) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const run = runJob(job).finally(() => {
        running.delete(run);
        schedule(job);
      });
      running.add(run);
    }, job.everySeconds * 1000);
    timer.unref();
    timers.add(timer);
  };
  for (const job of jobs) schedule(job);

  return {
    async runOnce() {
      for (const job of jobs) await runJob(job);
    },
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(running);
    },
  };
}
