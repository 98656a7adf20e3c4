import { z } from 'zod';

// The answers of migrations/020_subscriptions.sql's functions (postpaid plans in Stripe).

const id = z.guid();
const stripeId = z.string().min(3).max(255);
const date = z.coerce.date();

export const SyncPlanSchema = z.object({
  id,
  key: z.string(),
  version: z.number().int().positive(),
  kind: z.enum(['payg', 'tiered', 'subscription']),
  name: z.string(),
  description: z.string(),
  currency: z.string(),
  monthly_fee_cents: z.number().int().min(0),
  included_seconds: z.number().int().min(0),
  status: z.enum(['active', 'retired']),
  stripe_product_id: stripeId.nullable(),
  stripe_fee_price_id: stripeId.nullable(),
  stripe_usage_price_id: stripeId.nullable(),
  tiers: z.array(z.object({
    position: z.number().int().positive(),
    up_to_seconds: z.number().int().positive().nullable(),
    // The exact decimal (12 places) as text: Stripe's unit_amount_decimal.
    cents_per_second: z.string().regex(/^\d+(\.\d+)?$/),
  })),
});
export type SyncPlan = z.infer<typeof SyncPlanSchema>;

export const PlanStripeIdsWriteSchema = z.object({ plan_id: id, changed: z.boolean() });
export type PlanStripeIdsWrite = z.infer<typeof PlanStripeIdsWriteSchema>;

export const UserPlanSchema = z.looseObject({
  id,
  user_id: id,
  plan_id: id,
  status: z.enum(['pending', 'active', 'suspended', 'ended']),
  stripe_subscription_id: stripeId.nullable(),
  stripe_checkout_session_id: stripeId.nullable(),
  current_period_start: date.nullable(),
  current_period_end: date.nullable(),
  scheduled_plan_id: id.nullable(),
  scheduled_plan_key: z.string().nullable(),
  cancel_at_period_end: z.boolean(),
  spending_cap_cents: z.number().int().positive(),
  suspended_reason: z.string().nullable(),
  suspended_invoice_id: z.string().nullable(),
  suspended_invoice_url: z.string().nullable(),
  ended_at: date.nullable(),
  plan: z.object({
    id,
    key: z.string(),
    version: z.number().int(),
    kind: z.string(),
    name: z.string(),
    sort_order: z.number().int(),
    stripe_fee_price_id: stripeId.nullable(),
    stripe_usage_price_id: stripeId.nullable(),
  }),
});
export type UserPlan = z.infer<typeof UserPlanSchema>;

const PlanPrices = z.object({
  id,
  key: z.string(),
  stripe_fee_price_id: stripeId.nullable(),
  stripe_usage_price_id: stripeId.nullable(),
});

export const PlanChangeSchema = z.object({
  direction: z.enum(['upgrade', 'downgrade']),
  user_plan: UserPlanSchema,
  from: PlanPrices,
  to: PlanPrices,
});
export type PlanChange = z.infer<typeof PlanChangeSchema>;

export const DuePlanChangeSchema = z.object({ user_plan_id: id, scheduled_from: date, to: PlanPrices });
export type DuePlanChange = z.infer<typeof DuePlanChangeSchema>;

export const InvoiceRecordSchema = z.object({
  invoice_id: z.string(),
  user_id: id,
  user_plan_id: id.nullable(),
  stripe_subscription_id: z.string().nullable(),
  status: z.enum(['draft', 'open', 'paid', 'uncollectible', 'void']),
  payment_failed: z.boolean(),
  currency: z.string(),
  total_cents: z.number().int(),
  amount_due_cents: z.number().int(),
  amount_paid_cents: z.number().int(),
  hosted_invoice_url: z.string().nullable(),
  period_start: date.nullable(),
  period_end: date.nullable(),
  created_at: date,
  updated_at: date,
});
export type InvoiceRecord = z.infer<typeof InvoiceRecordSchema>;

/** A subscription event's facts, read from Stripe's object (null: the event does not say). */
export interface SubscriptionFacts {
  eventCreated: Date;
  userId: string | null;
  subscriptionId: string;
  checkoutSessionId?: string | null;
  /** Stripe's subscription status; absent for checkout.session.completed, which only links the ids. */
  status?: string | null;
  priceIds?: string[] | null;
  periodStart?: Date | null;
  periodEnd?: Date | null;
  cancelAtPeriodEnd?: boolean | null;
  endedAt?: Date | null;
}

export interface InvoiceFacts {
  eventCreated: Date;
  invoiceId: string;
  customerId: string | null;
  subscriptionId: string | null;
  status: string;
  currency: string;
  totalCents: number;
  amountDueCents: number;
  amountPaidCents: number;
  hostedInvoiceUrl: string | null;
  periodStart: Date | null;
  periodEnd: Date | null;
  created: Date;
}
