import type Stripe from 'stripe';
import { z } from 'zod';
import type { Logger } from 'pino';
import { isBillingError } from '../billing/errors.ts';
import type { BillingStore, PaymentFacts, StripeEventOutcome, StripeEventRef } from '../billing/store.ts';

// Turns a verified Stripe event into one call of the billing store. Everything needed to fulfil a purchase
// travels in the Stripe objects' metadata (set when the purchase was created), so fulfilment never depends
// on the purchase request having gone through this process.

const id = z.string().min(3);
const expandable = z.union([id, z.looseObject({ id })]).nullish().transform((v) => (typeof v === 'string' ? v : v?.id ?? null));

/** The metadata every purchase carries: who bought which package, and whether as a gift. */
const PurchaseMetadata = z.object({
  user_id: z.guid(),
  package_id: z.string().min(1).max(40),
  gift: z.enum(['true', 'false']).optional().default('false'),
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

const Charge = z.looseObject({
  id,
  amount: z.number().int(),
  amount_refunded: z.number().int(),
  payment_intent: expandable,
});

const Dispute = z.looseObject({
  id,
  charge: expandable,
  payment_intent: expandable,
  status: z.string(),
});

export interface StripeEventDeps {
  store: BillingStore;
  /** Looks a payment intent up at Stripe, for events that arrive before the purchase is known here. */
  retrievePaymentIntent: (paymentIntentId: string) => Promise<Stripe.PaymentIntent>;
  log: Logger;
}

/** Thrown for an event we cannot act on however often it is delivered: acknowledged, logged, not retried. */
class Unfulfillable extends Error {}

function purchaseFrom(metadata: Record<string, string> | null | undefined, clientReferenceId?: string | null) {
  const parsed = PurchaseMetadata.safeParse({ ...metadata, user_id: metadata?.user_id ?? clientReferenceId });
  if (!parsed.success) throw new Unfulfillable(`purchase metadata missing or invalid: ${parsed.error.issues[0]?.message}`);
  return { userId: parsed.data.user_id, tierId: parsed.data.package_id, gift: parsed.data.gift === 'true' };
}

function parse<T>(schema: z.ZodType<T>, object: unknown, type: string): T {
  const parsed = schema.safeParse(object);
  if (!parsed.success) throw new Unfulfillable(`${type}: unexpected object: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function paymentFromIntent(intent: z.infer<typeof PaymentIntent>): PaymentFacts {
  return {
    ...purchaseFrom(intent.metadata),
    amountCents: intent.amount_received ?? intent.amount,
    currency: intent.currency,
    paymentIntentId: intent.id,
    chargeId: intent.latest_charge,
    customerId: intent.customer,
  };
}

async function dispatch(event: Stripe.Event, ref: StripeEventRef, deps: StripeEventDeps): Promise<StripeEventOutcome> {
  const { store } = deps;
  const object = event.data.object as unknown;
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
    case 'checkout.session.async_payment_failed': {
      const session = parse(CheckoutSession, object, event.type);
      const purchase = purchaseFrom(session.metadata, session.client_reference_id);
      return store.recordPaymentFailure(ref, {
        ...purchase,
        amountCents: session.amount_total ?? 0,
        currency: session.currency ?? 'usd',
        checkoutSessionId: session.id,
        paymentIntentId: session.payment_intent,
        reason: 'the delayed payment failed',
      });
    }
    case 'payment_intent.succeeded': {
      const intent = parse(PaymentIntent, object, event.type);
      if (!intent.metadata?.user_id || !intent.metadata?.package_id) return store.recordIgnoredStripeEvent(ref);
      return store.recordPaymentSuccess(ref, paymentFromIntent(intent));
    }
    case 'payment_intent.payment_failed': {
      const intent = parse(PaymentIntent, object, event.type);
      if (!intent.metadata?.user_id || !intent.metadata?.package_id) return store.recordIgnoredStripeEvent(ref);
      return store.recordPaymentFailure(ref, {
        ...paymentFromIntent(intent),
        reason: intent.last_payment_error?.message ?? 'the payment failed',
      });
    }
    case 'charge.refunded': {
      const charge = parse(Charge, object, event.type);
      const refund = { paymentIntentId: charge.payment_intent, chargeId: charge.id, amountRefundedCents: charge.amount_refunded };
      return withPurchaseKnown(charge.payment_intent, deps, () => store.recordRefund(ref, refund));
    }
    case 'charge.dispute.created':
    case 'charge.dispute.closed': {
      const dispute = parse(Dispute, object, event.type);
      const facts = { paymentIntentId: dispute.payment_intent, chargeId: dispute.charge, disputeId: dispute.id, status: dispute.status };
      return withPurchaseKnown(dispute.payment_intent, deps, () => store.recordDispute(ref, facts));
    }
    default:
      return store.recordIgnoredStripeEvent(ref);
  }
}

/**
 * Events may arrive before the purchase they refer to (out of order, or the purchase event was lost): the
 * payment intent is then looked up at Stripe and the purchase recorded first, never dropped.
 */
async function withPurchaseKnown(
  paymentIntentId: string | null,
  deps: StripeEventDeps,
  apply: () => Promise<StripeEventOutcome>,
): Promise<StripeEventOutcome> {
  try {
    return await apply();
  } catch (error) {
    if (!isBillingError(error, 'unknown_payment') || !paymentIntentId) throw error;
    const intent = parse(PaymentIntent, await deps.retrievePaymentIntent(paymentIntentId), 'payment_intent');
    deps.log.warn({ paymentIntentId }, 'event for a purchase not seen yet: recorded it from Stripe first');
    await deps.store.recordPaymentSuccess(
      { id: `evt_lookup_${intent.id}`, type: 'lookup.payment_intent', payload: { payment_intent: intent.id } },
      paymentFromIntent(intent),
    );
    return apply();
  }
}

export async function applyStripeEvent(event: Stripe.Event, deps: StripeEventDeps): Promise<StripeEventOutcome> {
  const ref: StripeEventRef = { id: event.id, type: event.type, payload: event };
  try {
    return await dispatch(event, ref, deps);
  } catch (error) {
    if (!(error instanceof Unfulfillable)) throw error;
    deps.log.error({ eventId: event.id, eventType: event.type, reason: error.message }, 'Stripe event cannot be fulfilled');
    const outcome = await deps.store.recordIgnoredStripeEvent(ref);
    return { ...outcome, outcome: outcome.outcome === 'duplicate_event' ? outcome.outcome : 'unfulfillable' };
  }
}
