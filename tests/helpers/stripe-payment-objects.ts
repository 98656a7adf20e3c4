import { readFileSync } from 'node:fs';

// Stripe's published payment objects (tests/fixtures/stripe-payments, see its README), turned into the
// objects of one purchase's lifecycle by overriding ids, amounts and statuses. Every key of the published
// object stays; only values change. Webhook events wrap them in the published event object.

type Json = Record<string, unknown>;

const FIXTURES = ['payment_intent', 'charge', 'refund', 'dispute', 'checkout.session', 'event'] as const;
type FixtureName = (typeof FIXTURES)[number];

const published = Object.fromEntries(FIXTURES.map((name) => [name,
  JSON.parse(readFileSync(new URL(`../fixtures/stripe-payments/${name}.json`, import.meta.url), 'utf8')) as Json])) as Record<FixtureName, Json>;

/** A fresh copy of Stripe's published object. */
export function publishedObject(name: FixtureName): Json {
  return structuredClone(published[name]);
}

/** The published object with some values replaced; a key it does not have is refused (a typo, or a shape Stripe does not send). */
function override(name: FixtureName, values: Json): Json {
  const object = publishedObject(name);
  for (const [key, value] of Object.entries(values)) {
    if (!(key in object)) throw new Error(`Stripe's published ${name} has no field ${key}`);
    object[key] = value;
  }
  return object;
}

export const API_VERSION = '2026-10-28.endive';
const now = () => Math.floor(Date.now() / 1000);

export interface PurchaseMetadata {
  userId: string;
  packageId: string;
  gift?: boolean;
  /** What the buyer was shown (the sidecar puts these in at purchase); omitted: an older purchase without them. */
  seconds?: number;
  priceCents?: number;
  currency?: string;
  tierVersion?: number;
}

export function purchaseMetadata(purchase: PurchaseMetadata): Record<string, string> {
  return {
    user_id: purchase.userId, package_id: purchase.packageId, gift: String(purchase.gift ?? false),
    ...(purchase.seconds !== undefined && { seconds: String(purchase.seconds) }),
    ...(purchase.priceCents !== undefined && { price_cents: String(purchase.priceCents) }),
    ...(purchase.currency !== undefined && { currency: purchase.currency }),
    ...(purchase.tierVersion !== undefined && { tier_version: String(purchase.tierVersion) }),
  };
}

/** A payment Checkout Session (paid unless told otherwise). */
export function checkoutSessionObject(values: {
  id: string; paymentIntentId: string | null; amount: number; currency?: string; metadata: Record<string, string>;
  clientReferenceId?: string | null; paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required'; status?: 'open' | 'complete' | 'expired';
}, extra: Json = {}): Json {
  return override('checkout.session', {
    id: values.id, mode: 'payment', status: values.status ?? 'complete', payment_status: values.paymentStatus ?? 'paid',
    amount_subtotal: values.amount, amount_total: values.amount, currency: values.currency ?? 'usd',
    client_reference_id: values.clientReferenceId === undefined ? values.metadata.user_id ?? null : values.clientReferenceId,
    customer: null, payment_intent: values.paymentIntentId, metadata: values.metadata, created: now(),
    success_url: 'https://app.mindbot.test/purchase/success', url: null, subscription: null, invoice: null, ...extra,
  });
}

/** A PaymentIntent in one of its states; amount_received follows the status unless given. */
export function paymentIntentObject(values: {
  id: string; amount: number; currency?: string; status: string; metadata: Record<string, string>;
  latestChargeId?: string | null; amountReceived?: number; declineMessage?: string;
}, extra: Json = {}): Json {
  return override('payment_intent', {
    id: values.id, amount: values.amount, currency: values.currency ?? 'usd', status: values.status,
    amount_received: values.amountReceived ?? (values.status === 'succeeded' ? values.amount : 0), amount_capturable: 0,
    latest_charge: values.latestChargeId ?? null, metadata: values.metadata, created: now(),
    canceled_at: values.status === 'canceled' ? now() : null, cancellation_reason: values.status === 'canceled' ? 'abandoned' : null,
    last_payment_error: values.declineMessage
      ? { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: values.declineMessage }
      : null,
    next_action: null, processing: null, transfer_data: null, client_secret: `${values.id}_secret_test`,
    ...extra,
  });
}

/** A Refund of a charge. */
export function refundObject(values: {
  id: string; chargeId: string; paymentIntentId: string | null; amount: number; status?: string; currency?: string;
}, extra: Json = {}): Json {
  return override('refund', {
    id: values.id, charge: values.chargeId, payment_intent: values.paymentIntentId, amount: values.amount,
    currency: values.currency ?? 'usd', status: values.status ?? 'succeeded', created: now(),
    ...extra,
  });
}

/**
 * A succeeded Charge of a PaymentIntent. `refunds` lists its refunds as Stripe would if they were expanded
 * (omitted, or null: the charge as current API versions send it, without the list).
 */
export function chargeObject(values: {
  id: string; paymentIntentId: string | null; amount: number; currency?: string; refunds?: Json[] | null; disputed?: boolean;
}, extra: Json = {}): Json {
  const refunded = (values.refunds ?? []).filter((r) => r.status !== 'failed' && r.status !== 'canceled')
    .reduce((sum, r) => sum + (r.amount as number), 0);
  return override('charge', {
    id: values.id, payment_intent: values.paymentIntentId, amount: values.amount, amount_captured: values.amount, captured: true,
    currency: values.currency ?? 'usd', amount_refunded: refunded, refunded: refunded >= values.amount, paid: true, status: 'succeeded',
    disputed: values.disputed ?? false, created: now(), source: null, transfer_data: null, balance_transaction: null,
    refunds: values.refunds === null || values.refunds === undefined ? null
      : { object: 'list', data: values.refunds, has_more: false, url: `/v1/charges/${values.id}/refunds` },
    ...extra,
  });
}

/** A Dispute: an inquiry (the published one: warning_*, case_type inquiry) or a chargeback. */
export function disputeObject(values: {
  id: string; chargeId: string; paymentIntentId: string | null; amount: number; status: string; kind: 'inquiry' | 'chargeback';
}, extra: Json = {}): Json {
  const published = publishedObject('dispute') as { payment_method_details: { card: Json } };
  return override('dispute', {
    id: values.id, charge: values.chargeId, payment_intent: values.paymentIntentId, amount: values.amount, status: values.status,
    created: now(), is_charge_refundable: values.kind === 'inquiry',
    payment_method_details: { ...published.payment_method_details,
      card: { ...published.payment_method_details.card, case_type: values.kind } },
    ...extra,
  });
}

/** The webhook event Stripe sends about `object`. */
export function eventObject(type: string, object: Json, id: string): Json {
  return override('event', {
    id, type, api_version: API_VERSION, created: now(), livemode: false, pending_webhooks: 1,
    request: { id: null, idempotency_key: null }, data: { object },
  });
}
