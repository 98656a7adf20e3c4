import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { BillingStore, PaymentDetail } from '../billing/store.ts';
import { PaymentError } from './errors.ts';

export interface RefundRequest {
  paymentId: string;
  /** Omitted: the money of the unused time (with the override: everything not refunded yet). */
  amountCents?: number | undefined;
  reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer' | undefined;
  adminId: string;
  /** The explicit override: refund more than the unused time is worth (time already talked, given back). */
  allowMoreThanUnused?: boolean | undefined;
  /** A retry (a double click) with the same key is the same refund at Stripe. */
  idempotencyKey?: string | undefined;
}

/** What the admin page shows before a refund: the SQL function's figures (get_payment, migrations/010). */
export function refundQuote(payment: PaymentDetail) {
  return {
    payment_id: payment.payment_id,
    user_id: payment.user_id,
    status: payment.status,
    currency: payment.currency,
    amount_cents: payment.amount_cents,
    refunded_cents: payment.refunded_cents,
    refundable_cents: payment.refundable_cents,
    unused_refundable_cents: payment.unused_refundable_cents,
    card_total_seconds: payment.card_total_seconds,
    card_unused_seconds: payment.card_unused_seconds,
    refundable_through_stripe: payment.stripe_payment_intent_id !== null,
  };
}

/**
 * Asks Stripe to refund a payment. The time card is not touched here: Stripe's refund events (refund.created,
 * charge.refunded…) report the refund by its id and take back the card's seconds in proportion to the money
 * (seconds x refunded / paid), as far as they are unused, once, whoever started the refund (this API or
 * Stripe's dashboard); one that fails later gives them back. So by default a refund is at most the money of the
 * unused time (unused_refundable_cents); refunding more gives back money for time already talked and needs the
 * explicit override. Never more than what is left of the payment.
 */
export async function refundPayment(store: BillingStore, stripe: Stripe | null, log: Logger, request: RefundRequest) {
  if (!stripe) throw new PaymentError('payments_unavailable', 'refunds are not configured (STRIPE_SECRET_KEY is missing)');
  const payment = await store.getPayment(request.paymentId);
  if (!payment.stripe_payment_intent_id) {
    throw new PaymentError('not_refundable', 'this payment has no Stripe payment intent to refund');
  }
  if (payment.refundable_cents === 0) throw new PaymentError('already_refunded', 'this payment is refunded in full');
  const override = request.allowMoreThanUnused === true;
  const amount = request.amountCents ?? (override ? payment.refundable_cents : payment.unused_refundable_cents);
  if (amount > payment.refundable_cents) {
    throw new PaymentError('refund_too_large', `at most ${payment.refundable_cents} cents are left to refund`);
  }
  if ((amount > payment.unused_refundable_cents || amount === 0) && !override) {
    throw new PaymentError('exceeds_unused_time',
      payment.unused_refundable_cents === 0
        ? 'no unused time is left on this payment\'s card: to refund anyway, set allow_more_than_unused'
        : `the unused time is worth ${payment.unused_refundable_cents} cents: to refund more (time already used), set allow_more_than_unused`);
  }
  // Without a caller's key, the payment's refund state and the amount make one: repeating the same request
  // before Stripe's webhook arrives refunds once.
  const key = request.idempotencyKey ?? `${payment.refunded_cents}:${amount}`;
  let refund: Stripe.Refund;
  try {
    refund = await stripe.refunds.create({
      payment_intent: payment.stripe_payment_intent_id,
      amount,
      ...(request.reason && { reason: request.reason }),
      metadata: { payment_id: payment.payment_id, admin_user_id: request.adminId },
    }, { idempotencyKey: `refund:${payment.payment_id}:${key}` });
  } catch (error) {
    log.warn({ err: error, paymentId: payment.payment_id }, 'Stripe refused or failed a refund');
    const message = error instanceof Error ? error.message : 'the refund failed';
    const status = (error as { statusCode?: number }).statusCode;
    throw status !== undefined && status < 500
      ? new PaymentError('refund_rejected', message, { cause: error })
      : new PaymentError('payment_provider_error', 'the payment provider could not be reached; please try again', { cause: error });
  }
  log.info({ adminId: request.adminId, paymentId: payment.payment_id, refundId: refund.id, amount,
    beyondUnused: amount > payment.unused_refundable_cents }, 'refund requested at Stripe');
  return {
    refund_id: refund.id,
    status: refund.status,
    payment_id: payment.payment_id,
    amount_cents: refund.amount,
    note: 'the time card is adjusted when Stripe confirms the refund',
  };
}
