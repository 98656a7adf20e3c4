// The shapes of the meter event outbox's SQL functions (migration 019), checked where they enter TypeScript.
import { z } from 'zod';

const timestamp = z.string().min(1);

/** A meter event a sender holds the lease of, as Stripe is to be sent it. */
export const ClaimedMeterEventSchema = z.object({
  usage_charge_id: z.number().int().positive(),
  identifier: z.string().min(1).max(100),
  event_name: z.string().min(1).max(100),
  stripe_customer_id: z.string().min(1).max(255),
  value_seconds: z.number().int().positive(),
  /** Unix seconds: when the usage happened (the meter event's timestamp). */
  timestamp: z.number().int(),
  /** Failed attempts so far. */
  attempts: z.number().int().min(0),
});
export type ClaimedMeterEvent = z.infer<typeof ClaimedMeterEventSchema>;

/** One claimed event's outcome: delivered (Stripe has it) or failed (why, kept as last_error). */
export const MeterEventResultSchema = z.union([
  z.object({ identifier: z.string().min(1).max(100), delivered: z.literal(true) }),
  z.object({ identifier: z.string().min(1).max(100), delivered: z.literal(false), error: z.string().max(1000) }),
]);
export type MeterEventResult = z.infer<typeof MeterEventResultSchema>;

export const MeterEventReportSchema = z.object({
  delivered: z.number().int().min(0),
  failed: z.number().int().min(0),
  /** Already delivered, or a failure reported by a sender that no longer held the lease. */
  ignored: z.number().int().min(0),
});
export type MeterEventReport = z.infer<typeof MeterEventReportSchema>;

export const MeterOutboxStatsSchema = z.object({
  pending: z.number().int(),
  leased: z.number().int(),
  retrying: z.number().int(),
  delivered: z.number().int(),
  oldest_pending_seconds: z.number().int(),
  /** Periods in drift not yet resolved. */
  drift_open: z.number().int(),
});
export type MeterOutboxStats = z.infer<typeof MeterOutboxStatsSchema>;

/** A settled period to compare with Stripe: [window_start, window_end) are whole minutes (Unix seconds). */
export const ReconciliationPeriodSchema = z.object({
  user_plan_id: z.string().uuid(),
  period_start: timestamp,
  period_end: timestamp,
  stripe_customer_id: z.string().min(1),
  window_start: z.number().int(),
  window_end: z.number().int(),
  our_seconds: z.number().int().min(0),
});
export type ReconciliationPeriod = z.infer<typeof ReconciliationPeriodSchema>;

export const MeterDriftSchema = z.object({
  id: z.number().int(),
  user_plan_id: z.string().uuid(),
  period_start: timestamp,
  period_end: timestamp,
  our_seconds: z.number().int(),
  stripe_seconds: z.number().int(),
  checked_at: timestamp,
  resolved_at: timestamp.nullable(),
});
export type MeterDrift = z.infer<typeof MeterDriftSchema>;

export const ReconciliationRecordSchema = z.object({
  checked: z.number().int(),
  /** Periods whose count moved between the offer and the record (checked again next run). */
  skipped: z.number().int(),
  resolved: z.number().int(),
  drift: z.array(MeterDriftSchema),
});
export type ReconciliationRecord = z.infer<typeof ReconciliationRecordSchema>;
