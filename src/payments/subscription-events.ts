import type Stripe from 'stripe';
import type { Logger } from 'pino';
import { z } from 'zod';
import { BillingError } from '../billing/errors.ts';
import type { BillingStore, StripeEventOutcome, StripeEventRef } from '../billing/store.ts';
import { moveSubscription } from './subscriptions.ts';

// The webhook events of postpaid plans: a Checkout Session in subscription mode, the subscription's life and its
// invoices. Each is read with zod into plain facts and applied by ONE SQL call (migrations/020_subscriptions.sql),
// which claims the event id, ignores what is older than what it knows, and keeps what it cannot apply for an
// administrator. An object that cannot be read is a BillingError invalid_argument: the caller
// (stripe-events.ts) acknowledges it and keeps it for attention, as for purchases.

const id = z.string().min(3).max(255);
const expandable = z.union([id, z.looseObject({ id })]).nullish().transform((v) => (typeof v === 'string' ? v : v?.id ?? null));
const unix = z.number().int().nonnegative();
const toDate = (seconds: number | null | undefined) => (seconds === null || seconds === undefined ? null : new Date(seconds * 1000));

const CheckoutSession = z.looseObject({
  id,
  mode: z.string(),
  subscription: expandable,
  client_reference_id: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
});

const Subscription = z.looseObject({
  id,
  status: z.string(),
  cancel_at_period_end: z.boolean(),
  ended_at: unix.nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  items: z.looseObject({
    data: z.array(z.looseObject({
      price: z.looseObject({ id }),
      // Since API 2025-03-31 the period is the items' (the subscription's own fields are gone).
      current_period_start: unix,
      current_period_end: unix,
    })),
  }),
});

const Invoice = z.looseObject({
  id: z.string().regex(/^in_\w+$/),
  customer: expandable,
  status: z.enum(['draft', 'open', 'paid', 'uncollectible', 'void']),
  currency: z.string(),
  total: z.number().int(),
  amount_due: z.number().int().nonnegative(),
  amount_paid: z.number().int().nonnegative(),
  hosted_invoice_url: z.string().nullish(),
  period_start: unix.nullish(),
  period_end: unix.nullish(),
  created: unix,
  // Where the subscription is named: parent.subscription_details (current API versions) or subscription (older).
  parent: z.looseObject({ subscription_details: z.looseObject({ subscription: expandable }).nullish() }).nullish(),
  subscription: expandable.optional(),
});

const INVOICE_EVENTS = new Set([
  'invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_failed', 'invoice.voided', 'invoice.marked_uncollectible',
]);
const SUBSCRIPTION_EVENTS = new Set(['customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted']);

function parse<T>(schema: z.ZodType<T>, object: unknown, type: string): T {
  const parsed = schema.safeParse(object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BillingError('invalid_argument', `${type}: unexpected object: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return parsed.data;
}

const userIdOf = (metadata: Record<string, string> | null | undefined, fallback?: string | null) => {
  const candidate = metadata?.user_id ?? fallback ?? null;
  return candidate && z.guid().safeParse(candidate).success ? candidate.toLowerCase() : null;
};

/** Whether the event belongs to postpaid plans (and so to applySubscriptionEvent). */
export function isSubscriptionEvent(event: Stripe.Event): boolean {
  if (INVOICE_EVENTS.has(event.type) || SUBSCRIPTION_EVENTS.has(event.type)) return true;
  return event.type === 'checkout.session.completed' && (event.data.object as { mode?: unknown }).mode === 'subscription';
}

export interface SubscriptionEventDeps {
  store: BillingStore;
  /** Applies a downgrade that fell due (null: no Stripe client; the downgrade then waits). */
  stripe: Stripe | null;
  log: Logger;
}

/**
 * A downgrade asked for during a period is made at Stripe once a later period has begun, before the event is
 * recorded: if Stripe fails, the event is not claimed and its retry tries again. Stripe's own event for the
 * change then moves the user plan (and clears the schedule); until it lands, a subscription already on the
 * new prices is left alone.
 */
async function makeDueDowngrade(deps: SubscriptionEventDeps, stripe: Stripe, subscriptionId: string, periodStart: Date): Promise<void> {
  const due = await deps.store.getDuePlanChange({ subscriptionId, periodStart });
  if (!due) return;
  const current = await stripe.subscriptions.retrieve(subscriptionId);
  const wanted = new Set([due.to.stripe_usage_price_id, due.to.stripe_fee_price_id].filter((p) => p !== null));
  const prices = current.items.data.map((i) => i.price.id);
  if (prices.length === wanted.size && prices.every((p) => wanted.has(p))) return;
  await moveSubscription(stripe, current, due.to, `plan-downgrade:${due.user_plan_id}:${due.scheduled_from.getTime() / 1000}`);
  deps.log.info({ subscriptionId, planKey: due.to.key }, 'scheduled downgrade made at Stripe');
}

export async function applySubscriptionEvent(event: Stripe.Event, ref: StripeEventRef, deps: SubscriptionEventDeps): Promise<StripeEventOutcome> {
  const { store } = deps;
  const object = event.data.object as unknown;
  const eventCreated = new Date(event.created * 1000);
  if (event.type === 'checkout.session.completed') {
    const session = parse(CheckoutSession, object, event.type);
    if (!session.subscription) throw new BillingError('invalid_argument', `${event.type}: a subscription-mode session without a subscription`);
    return store.recordSubscriptionEvent(ref, {
      eventCreated, userId: userIdOf(session.metadata, session.client_reference_id),
      subscriptionId: session.subscription, checkoutSessionId: session.id,
    });
  }
  if (SUBSCRIPTION_EVENTS.has(event.type)) {
    const subscription = parse(Subscription, object, event.type);
    const items = subscription.items.data;
    const periodStart = toDate(items.length ? Math.min(...items.map((i) => i.current_period_start)) : null);
    if (deps.stripe && periodStart && ['active', 'trialing', 'past_due'].includes(subscription.status)) {
      await makeDueDowngrade(deps, deps.stripe, subscription.id, periodStart);
    }
    return store.recordSubscriptionEvent(ref, {
      eventCreated,
      userId: userIdOf(subscription.metadata),
      subscriptionId: subscription.id,
      status: subscription.status,
      priceIds: items.map((i) => i.price.id),
      periodStart,
      periodEnd: toDate(items.length ? Math.max(...items.map((i) => i.current_period_end)) : null),
      cancelAtPeriodEnd: subscription.cancel_at_period_end,
      endedAt: toDate(subscription.ended_at),
    });
  }
  const invoice = parse(Invoice, object, event.type);
  return store.recordInvoiceEvent(ref, {
    eventCreated,
    invoiceId: invoice.id,
    customerId: invoice.customer,
    subscriptionId: invoice.parent?.subscription_details?.subscription ?? invoice.subscription ?? null,
    status: invoice.status,
    currency: invoice.currency,
    totalCents: invoice.total,
    amountDueCents: invoice.amount_due,
    amountPaidCents: invoice.amount_paid,
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    periodStart: toDate(invoice.period_start),
    periodEnd: toDate(invoice.period_end),
    created: new Date(invoice.created * 1000),
  });
}
