import Stripe from 'stripe';
import type { Logger } from 'pino';
import type { BillingStore, PricingTier } from '../billing/store.ts';
import type { PurchaseResponse } from '../shared/api-contracts.ts';
import { PaymentError } from './errors.ts';

export interface PurchaseDeps {
  store: BillingStore;
  stripe: Stripe | null;
  successUrl: string;
  cancelUrl: string;
  log: Logger;
}

export interface PurchaseRequest {
  userId: string;
  packageId: string;
  paymentMethodId?: string | undefined;
  savePaymentMethod?: boolean | undefined;
  gift?: boolean | undefined;
  /** Makes a retried purchase request the same Stripe request (Stripe replays it instead of charging twice). */
  idempotencyKey: string;
}

/** What a started purchase answers: the API sends it to the client as it is (POST /time/purchase). */
export type PurchaseResult = PurchaseResponse;

async function activeTier(store: BillingStore, packageId: string): Promise<PricingTier> {
  const tiers = await store.listPricingTiers();
  const tier = tiers.find((t) => t.id === packageId);
  if (!tier) {
    throw new PaymentError('unknown_package',
      `no package ${JSON.stringify(packageId)}; available: ${tiers.map((t) => t.id).join(', ')}`);
  }
  return tier;
}

/** The user's Stripe customer: created once (an idempotent call) and remembered in the database. */
async function customerFor(deps: PurchaseDeps & { stripe: Stripe }, userId: string): Promise<string> {
  const known = await deps.store.getStripeCustomer(userId);
  if (known) return known;
  const customer = await deps.stripe.customers.create({ metadata: { user_id: userId } }, { idempotencyKey: `customer:${userId}` });
  return deps.store.rememberStripeCustomer(userId, customer.id);
}

function stripeFailure(error: unknown): PaymentError {
  if (error instanceof Stripe.errors.StripeCardError) {
    return new PaymentError('payment_declined', error.message, { cause: error });
  }
  if (error instanceof Stripe.errors.StripeIdempotencyError) {
    return new PaymentError('idempotency_conflict', 'this Idempotency-Key was used for a different purchase', { cause: error });
  }
  if (error instanceof Stripe.errors.StripeInvalidRequestError) {
    return new PaymentError('payment_rejected', error.message, { cause: error });
  }
  return new PaymentError('payment_provider_error', 'the payment provider could not be reached; please try again', { cause: error });
}

/**
 * Starts a purchase at Stripe. Without a payment method: a Checkout Session whose URL the client opens. With
 * one: a PaymentIntent for the user's customer, confirmed at once. The metadata carries everything the
 * webhook needs to fulfil it, and every parameter is derived from the request alone, so a retry with the same
 * idempotency key sends byte-identical parameters.
 */
export async function startPurchase(deps: PurchaseDeps, request: PurchaseRequest): Promise<PurchaseResult> {
  const { stripe } = deps;
  if (!stripe) throw new PaymentError('payments_unavailable', 'purchases are not configured (STRIPE_SECRET_KEY is missing)');
  const tier = await activeTier(deps.store, request.packageId);
  const gift = request.gift ?? false;
  // What the buyer is shown now is what the webhook grants, even if the tier is edited before the money
  // arrives (a delayed payment can take days).
  const metadata = {
    user_id: request.userId, package_id: tier.id, gift: String(gift),
    seconds: String(tier.total_seconds), price_cents: String(tier.price_cents), currency: tier.currency,
    ...(tier.version !== undefined && { tier_version: String(tier.version) }),
  };
  try {
    if (!request.paymentMethodId) {
      const customer = await deps.store.getStripeCustomer(request.userId);
      const session = await stripe.checkout.sessions.create({
        mode: 'payment',
        line_items: [tier.stripe_price_id
          ? { price: tier.stripe_price_id, quantity: 1 }
          : {
              price_data: {
                currency: tier.currency,
                unit_amount: tier.price_cents,
                product_data: { name: `MindBot ${tier.name}`, description: tier.description || undefined },
              },
              quantity: 1,
            }],
        client_reference_id: request.userId,
        ...(customer && { customer }),
        metadata,
        payment_intent_data: { metadata },
        success_url: deps.successUrl,
        cancel_url: deps.cancelUrl,
      }, { idempotencyKey: `checkout:${request.userId}:${request.idempotencyKey}` });
      if (!session.url) throw new PaymentError('payment_provider_error', 'Stripe returned a checkout session without a URL');
      return { kind: 'checkout', checkout_url: session.url, checkout_session_id: session.id, package_id: tier.id, gift };
    }
    const customer = await customerFor({ ...deps, stripe }, request.userId);
    const intent = await stripe.paymentIntents.create({
      amount: tier.price_cents,
      currency: tier.currency,
      customer,
      payment_method: request.paymentMethodId,
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      ...(request.savePaymentMethod && { setup_future_usage: 'off_session' as const }),
      metadata,
      description: `MindBot ${tier.name}`,
    }, { idempotencyKey: `intent:${request.userId}:${request.idempotencyKey}` });
    return {
      kind: 'payment_intent',
      payment_intent_id: intent.id,
      status: intent.status,
      client_secret: intent.status === 'requires_action' ? intent.client_secret : null,
      package_id: tier.id,
      gift,
    };
  } catch (error) {
    if (error instanceof PaymentError) throw error;
    deps.log.warn({ err: error, userId: request.userId, packageId: tier.id }, 'Stripe refused or failed a purchase');
    throw stripeFailure(error);
  }
}
