// What payments can refuse, in the domain's words. src/payments never speaks HTTP: the sidecar turns these
// into status codes in one place (src/sidecar/http-errors.ts), and the voice tools into sentences.

export const PAYMENT_ERROR_CODES = [
  /** Stripe is not configured (no STRIPE_SECRET_KEY, or for webhooks no STRIPE_WEBHOOK_SECRET). */
  'payments_unavailable',
  'webhooks_unavailable',
  /** The Stripe-Signature header is missing, does not match the body, or is too old. */
  'invalid_signature',
  'unknown_package',
  /** The card was declined. */
  'payment_declined',
  /** The same Idempotency-Key was sent before with different parameters. */
  'idempotency_conflict',
  /** Stripe refused the request as invalid (a bad payment method, a currency it cannot take…). */
  'payment_rejected',
  /** Stripe could not be reached or answered with a fault of its own. */
  'payment_provider_error',
  'not_refundable',
  'already_refunded',
  'refund_too_large',
  'exceeds_unused_time',
  'refund_rejected',
  /** No postpaid plan with that key is offered. */
  'unknown_plan',
  /** The plan has no Stripe prices yet (./launch.sh stripe-sync has not run since it was made). */
  'plan_not_synced',
  /** The caller is on a plan already, or has no subscription to change or cancel. */
  'plan_conflict',
  /** The caller has no Stripe customer yet (the billing portal needs one). */
  'no_billing_account',
] as const;

export type PaymentErrorCode = (typeof PAYMENT_ERROR_CODES)[number];

export class PaymentError extends Error {
  override name = 'PaymentError';
  constructor(
    readonly code: PaymentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isPaymentError(error: unknown, code?: PaymentErrorCode): error is PaymentError {
  return error instanceof PaymentError && (code === undefined || error.code === code);
}
