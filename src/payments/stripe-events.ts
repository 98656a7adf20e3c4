import type Stripe from 'stripe';
import { z } from 'zod';
import type { Logger } from 'pino';
import { isBillingError } from '../billing/errors.ts';
import type { BillingStore, PaymentFacts, StripeEventOutcome, StripeEventRef } from '../billing/store.ts';
import { PaymentError } from './errors.ts';
import { applySubscriptionEvent, isSubscriptionEvent } from './subscription-events.ts';

// Turns a verified Stripe event into one call of the billing store. Everything needed to fulfil a purchase
// travels in the Stripe objects' metadata (set when the purchase was created), so fulfilment never depends
// on the purchase request having gone through this process.

const id = z.string().min(3);
const expandable = z.union([id, z.looseObject({ id })]).nullish().transform((v) => (typeof v === 'string' ? v : v?.id ?? null));

const wholeNumber = z.string().regex(/^\d{1,10}$/, 'a whole number').transform(Number);

/**
 * The metadata every purchase carries: who bought which package, whether as a gift, and what the buyer was
 * shown at purchase (seconds, price, currency, tier version), which is what the webhook grants. Purchases
 * started before these were carried fall back to the tier's current values.
 */
const PurchaseMetadata = z.object({
  user_id: z.guid(),
  package_id: z.string().min(1).max(40),
  gift: z.enum(['true', 'false']).optional().default('false'),
  seconds: wholeNumber.pipe(z.number().int().positive().max(2_000_000_000)).optional(),
  price_cents: wholeNumber.pipe(z.number().int().positive().max(100_000_000)).optional(),
  currency: z.string().regex(/^[a-z]{3}$/).optional(),
  tier_version: wholeNumber.optional(),
});

const CheckoutSession = z.looseObject({
  id,
  mode: z.string(),
  payment_status: z.string(),
  amount_total: z.number().int().nullable(),
  currency: z.string().nullable(),
  client_reference_id: z.string().nullish(),
  customer: expandable,
  payment_intent: expandable,
  metadata: z.record(z.string(), z.string()).nullish(),
});

const PaymentIntent = z.looseObject({
  id,
  amount: z.number().int(),
  amount_received: z.number().int().optional(),
  currency: z.string(),
  customer: expandable,
  latest_charge: expandable,
  metadata: z.record(z.string(), z.string()).nullish(),
  last_payment_error: z.looseObject({ message: z.string().optional() }).nullish(),
});

const Refund = z.looseObject({
  id,
  amount: z.number().int().min(0),
  status: z.string().nullish().transform((s) => s ?? 'pending'),
  charge: expandable,
  payment_intent: expandable,
});

const Charge = z.looseObject({
  id,
  amount: z.number().int(),
  amount_refunded: z.number().int(),
  payment_intent: expandable,
  // Not part of the charge in current API versions unless expanded: then the refunds are looked up.
  refunds: z.looseObject({ data: z.array(Refund), has_more: z.boolean() }).nullish(),
});

const Dispute = z.looseObject({
  id,
  charge: expandable,
  payment_intent: expandable,
  status: z.string(),
  payment_method_details: z.looseObject({ card: z.looseObject({ case_type: z.string().nullish() }).nullish() }).nullish(),
});

export interface StripeEventDeps {
  store: BillingStore;
  /** Looks a payment intent up at Stripe, for events that arrive before the purchase is known here. */
  retrievePaymentIntent: (paymentIntentId: string) => Promise<Stripe.PaymentIntent>;
  /** The refunds of a charge at Stripe, for a charge.refunded event that does not list them. */
  listChargeRefunds: (chargeId: string) => Promise<Stripe.Refund[]>;
  /** For postpaid plans' events (a downgrade due at the period's end is made at Stripe); absent: none made. */
  stripe?: Stripe | null;
  log: Logger;
}

/** Thrown for an event we cannot act on however often it is delivered: acknowledged, logged, not retried. */
class Unfulfillable extends Error {}

function purchaseFrom(metadata: Record<string, string> | null | undefined, clientReferenceId?: string | null) {
  const parsed = PurchaseMetadata.safeParse({ ...metadata, user_id: metadata?.user_id ?? clientReferenceId });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Unfulfillable(`purchase metadata missing or invalid: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const m = parsed.data;
  return {
    userId: m.user_id, tierId: m.package_id, gift: m.gift === 'true',
    seconds: m.seconds ?? null, priceCents: m.price_cents ?? null, priceCurrency: m.currency ?? null,
  };
}

const isPurchase = (metadata: Record<string, string> | null | undefined) => Boolean(metadata?.user_id && metadata?.package_id);

function parse<T>(schema: z.ZodType<T>, object: unknown, type: string): T {
  const parsed = schema.safeParse(object);
  if (!parsed.success) throw new Unfulfillable(`${type}: unexpected object: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** A paid intent: what Stripe received. */
function paymentFromIntent(intent: z.infer<typeof PaymentIntent>): PaymentFacts {
  return {
    ...purchaseFrom(intent.metadata),
    amountCents: intent.amount_received || intent.amount,
    currency: intent.currency,
    paymentIntentId: intent.id,
    chargeId: intent.latest_charge,
    customerId: intent.customer,
  };
}

async function dispatch(event: Stripe.Event, ref: StripeEventRef, deps: StripeEventDeps): Promise<StripeEventOutcome> {
  const { store } = deps;
  const object = event.data.object as unknown;
  // Postpaid plans (subscriptions and their invoices): src/payments/subscription-events.ts.
  if (isSubscriptionEvent(event)) return applySubscriptionEvent(event, ref, { store, stripe: deps.stripe ?? null, log: deps.log });
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const session = parse(CheckoutSession, object, event.type);
      // Delayed methods (SEPA, ACH…) complete unpaid; async_payment_succeeded follows when the money arrives.
      if (session.mode !== 'payment' || !['paid', 'no_payment_required'].includes(session.payment_status)) {
        return store.recordIgnoredStripeEvent(ref);
      }
      return store.recordPaymentSuccess(ref, {
        ...purchaseFrom(session.metadata, session.client_reference_id),
        amountCents: session.amount_total ?? 0,
        currency: session.currency ?? 'usd',
        checkoutSessionId: session.id,
        paymentIntentId: session.payment_intent,
        customerId: session.customer,
      });
    }
    case 'checkout.session.async_payment_failed':
    case 'checkout.session.expired': {
      const session = parse(CheckoutSession, object, event.type);
      if (session.mode !== 'payment' || !isPurchase({ user_id: session.client_reference_id ?? '', ...session.metadata })) {
        return store.recordIgnoredStripeEvent(ref);
      }
      const expired = event.type === 'checkout.session.expired';
      return store.recordPaymentFailure(ref, {
        ...purchaseFrom(session.metadata, session.client_reference_id),
        amountCents: session.amount_total ?? 0,
        currency: session.currency ?? 'usd',
        checkoutSessionId: session.id,
        paymentIntentId: session.payment_intent,
        reason: expired ? 'the checkout expired before the payment went through' : 'the delayed payment failed',
        stage: expired ? 'expired' : 'failed',
      });
    }
    case 'payment_intent.succeeded': {
      const intent = parse(PaymentIntent, object, event.type);
      if (!isPurchase(intent.metadata)) return store.recordIgnoredStripeEvent(ref);
      return store.recordPaymentSuccess(ref, paymentFromIntent(intent));
    }
    case 'payment_intent.payment_failed':
    case 'payment_intent.canceled': {
      const intent = parse(PaymentIntent, object, event.type);
      if (!isPurchase(intent.metadata)) return store.recordIgnoredStripeEvent(ref);
      // A declined try records the price asked (nothing was received); Checkout may retry the same intent.
      const canceled = event.type === 'payment_intent.canceled';
      return store.recordPaymentFailure(ref, {
        ...purchaseFrom(intent.metadata),
        amountCents: intent.amount,
        currency: intent.currency,
        paymentIntentId: intent.id,
        reason: intent.last_payment_error?.message ?? (canceled ? 'the payment was canceled' : 'the payment failed'),
        stage: canceled ? 'canceled' : 'attempt',
      });
    }
    case 'charge.refunded': {
      const charge = parse(Charge, object, event.type);
      // The embedded list is used when it accounts for everything the charge says is refunded.
      const embedded = charge.refunds && !charge.refunds.has_more ? charge.refunds.data : null;
      const embeddedCents = embedded?.filter((r) => !['failed', 'canceled'].includes(r.status)).reduce((sum, r) => sum + r.amount, 0);
      const listed = embeddedCents === charge.amount_refunded ? embedded : null;
      const refunds = listed ?? (await deps.listChargeRefunds(charge.id)).map((r) => parse(Refund, r, 'refund'));
      const facts = { paymentIntentId: charge.payment_intent, chargeId: charge.id, refunds: refunds.map(refundObject) };
      return withPurchaseKnown(charge.payment_intent, deps, ref, () => store.recordRefunds(ref, facts));
    }
    case 'refund.created':
    case 'refund.updated':
    case 'refund.failed':
    case 'charge.refund.updated': {
      const refund = parse(Refund, object, event.type);
      const facts = { paymentIntentId: refund.payment_intent, chargeId: refund.charge, refunds: [refundObject(refund)] };
      return withPurchaseKnown(refund.payment_intent, deps, ref, () => store.recordRefunds(ref, facts));
    }
    case 'charge.dispute.created':
    case 'charge.dispute.updated':
    case 'charge.dispute.funds_withdrawn':
    case 'charge.dispute.funds_reinstated':
    case 'charge.dispute.closed': {
      const dispute = parse(Dispute, object, event.type);
      // An inquiry (status warning_*) withdraws no funds when it opens; a chargeback does.
      const inquiry = dispute.status.startsWith('warning_') || dispute.payment_method_details?.card?.case_type === 'inquiry';
      const facts = { paymentIntentId: dispute.payment_intent, chargeId: dispute.charge, disputeId: dispute.id, status: dispute.status, inquiry };
      return withPurchaseKnown(dispute.payment_intent, deps, ref, () => store.recordDispute(ref, facts));
    }
    default:
      return store.recordIgnoredStripeEvent(ref);
  }
}

const refundObject = (refund: z.infer<typeof Refund>) => ({ id: refund.id, amount: refund.amount, status: refund.status });

/**
 * Events may arrive before the purchase they refer to (out of order, or the purchase event was lost): the
 * payment intent is then looked up at Stripe and the purchase recorded first, never dropped. An intent that
 * is not a MindBot purchase can never be applied: that is kept for attention.
 */
async function withPurchaseKnown(
  paymentIntentId: string | null,
  deps: StripeEventDeps,
  ref: StripeEventRef,
  apply: () => Promise<StripeEventOutcome>,
): Promise<StripeEventOutcome> {
  try {
    return await apply();
  } catch (error) {
    if (!isBillingError(error, 'unknown_payment') || !paymentIntentId) throw error;
    const intent = parse(PaymentIntent, await deps.retrievePaymentIntent(paymentIntentId), 'payment_intent');
    if (!isPurchase(intent.metadata)) {
      return deps.store.recordStripeAttention(ref, {
        code: 'unknown_payment', objectId: intent.id,
        message: `${ref.type} is about payment intent ${intent.id}, which is not a MindBot purchase`,
      });
    }
    deps.log.warn({ paymentIntentId }, 'event for a purchase not seen yet: recorded it from Stripe first');
    await deps.store.recordPaymentSuccess(
      { id: `evt_lookup_${intent.id}`, type: 'lookup.payment_intent', payload: { payment_intent: intent.id } },
      paymentFromIntent(intent),
    );
    return apply();
  }
}

/**
 * Applies one verified event. An event that can never apply (unusable content, or values the billing rules
 * refuse as invalid, which no retry changes) is acknowledged and kept for an administrator; anything else
 * that fails (the database or Stripe unreachable, a race lost) is thrown, so that Stripe retries it.
 */
export async function applyStripeEvent(event: Stripe.Event, deps: StripeEventDeps): Promise<StripeEventOutcome> {
  const ref: StripeEventRef = { id: event.id, type: event.type, payload: event };
  try {
    return await dispatch(event, ref, deps);
  } catch (error) {
    const invalid = isBillingError(error, 'invalid_argument');
    if (!(error instanceof Unfulfillable) && !invalid) throw error;
    const object = (event.data.object as { id?: unknown }).id;
    return deps.store.recordStripeAttention(ref, {
      code: invalid ? 'invalid_event' : 'unusable_event',
      message: (error as Error).message,
      objectId: typeof object === 'string' && object.length >= 3 && object.length <= 255 ? object : null,
    });
  }
}

/**
 * The event Stripe signed, or a PaymentError: webhooks_unavailable when Stripe or the webhook secret is not
 * configured, invalid_signature when the header is missing or does not match the raw body (or is too old).
 * The signature is over the bytes exactly as Stripe sent them, so `body` must be the unparsed request body.
 */
export function verifyStripeEvent(
  stripe: Stripe | null, webhookSecret: string | null | undefined, body: unknown, signature: unknown,
): Stripe.Event {
  if (!webhookSecret || !stripe) {
    throw new PaymentError('webhooks_unavailable', 'webhooks are not configured (STRIPE_WEBHOOK_SECRET / STRIPE_SECRET_KEY)');
  }
  if (typeof signature !== 'string' || !Buffer.isBuffer(body)) {
    throw new PaymentError('invalid_signature', 'missing Stripe-Signature header or body');
  }
  try {
    return stripe.webhooks.constructEvent(body, signature, webhookSecret);
  } catch (error) {
    throw new PaymentError('invalid_signature', 'the Stripe signature does not match this body, or is too old', { cause: error });
  }
}

/** The look-ups applyStripeEvent makes at Stripe, through the real client. */
export function stripeLookups(stripe: Stripe): Pick<StripeEventDeps, 'retrievePaymentIntent' | 'listChargeRefunds'> {
  return {
    retrievePaymentIntent: (id) => stripe.paymentIntents.retrieve(id),
    listChargeRefunds: (charge) => stripe.refunds.list({ charge, limit: 100 }).autoPagingToArray({ limit: 1000 }),
  };
}
