import Stripe from 'stripe';
import type { Logger } from 'pino';
import type { BillingStore } from '../billing/store.ts';
import type { UserPlan } from '../billing/subscription-types.ts';
import type { BillingPortalResponse, PlanCancelResponse, PlanChangeResponse, PlanCheckoutResponse } from '../shared/api-contracts.ts';
import { PaymentError } from './errors.ts';

// A postpaid plan is a Stripe subscription: started through Checkout (mode=subscription), moved between plans
// by updating its items, cancelled at the period's end, and managed by the caller in Stripe's billing portal.
// Nothing here changes the user's plan in the database but the pending row of a new Checkout: Stripe's
// webhooks (subscription-events.ts) say what actually happened, and when.

export interface SubscriptionDeps {
  store: BillingStore;
  stripe: Stripe | null;
  successUrl: string;
  cancelUrl: string;
  log: Logger;
}

function requireStripe(stripe: Stripe | null): Stripe {
  if (!stripe) throw new PaymentError('payments_unavailable', 'plans are not configured (STRIPE_SECRET_KEY is missing)');
  return stripe;
}

/** The user's Stripe customer: created once (an idempotent call) and remembered in the database. */
async function customerFor(store: BillingStore, stripe: Stripe, userId: string): Promise<string> {
  const known = await store.getStripeCustomer(userId);
  if (known) return known;
  const customer = await stripe.customers.create({ metadata: { user_id: userId } }, { idempotencyKey: `customer:${userId}` });
  return store.rememberStripeCustomer(userId, customer.id);
}

function stripeFailure(error: unknown, log: Logger, what: string): never {
  if (error instanceof PaymentError) throw error;
  log.warn({ err: error }, `Stripe refused or failed: ${what}`);
  if (error instanceof Stripe.errors.StripeIdempotencyError) {
    throw new PaymentError('idempotency_conflict', 'this Idempotency-Key was used for a different request');
  }
  if (error instanceof Stripe.errors.StripeInvalidRequestError) throw new PaymentError('payment_rejected', error.message);
  throw new PaymentError('payment_provider_error', 'the payment provider could not be reached; please try again');
}

/** The API's answer (src/shared/api-contracts.ts): this module's result is what the caller reads. */
export type SubscribeResult = PlanCheckoutResponse;

/**
 * A Checkout Session in subscription mode for the plan's prices (the licensed monthly fee with quantity 1, the
 * metered usage price without one). The subscription carries user_id and plan_id, which is how its webhooks
 * find the user's plan whichever arrives first.
 */
export async function subscribeToPlan(deps: SubscriptionDeps, request: { userId: string; planKey: string; idempotencyKey: string }): Promise<SubscribeResult> {
  const stripe = requireStripe(deps.stripe);
  const current = await deps.store.getUserPlan(request.userId);
  if (current && (current.status !== 'pending' || current.stripe_subscription_id)) {
    throw new PaymentError('plan_conflict',
      `you are on plan ${current.plan.key} already; change it with POST /api/plans/${request.planKey}/change or cancel it`);
  }
  const plans = await deps.store.listPlansForStripeSync();
  const plan = plans.find((p) => p.key === request.planKey && p.status === 'active');
  if (!plan) throw new PaymentError('unknown_plan', `no postpaid plan ${JSON.stringify(request.planKey)} is offered`);
  if (!plan.stripe_usage_price_id || (plan.kind === 'subscription' && !plan.stripe_fee_price_id)) {
    throw new PaymentError('plan_not_synced', `plan ${plan.key} is not in Stripe yet (./launch.sh stripe-sync)`);
  }
  try {
    const customer = await customerFor(deps.store, stripe, request.userId);
    const metadata = { user_id: request.userId, plan_id: plan.id, plan_key: plan.key };
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer,
      client_reference_id: request.userId,
      line_items: [
        ...(plan.stripe_fee_price_id ? [{ price: plan.stripe_fee_price_id, quantity: 1 }] : []),
        { price: plan.stripe_usage_price_id },
      ],
      metadata,
      subscription_data: { metadata },
      success_url: deps.successUrl,
      cancel_url: deps.cancelUrl,
    }, { idempotencyKey: `plan-checkout:${request.userId}:${request.idempotencyKey}` });
    if (!session.url) throw new PaymentError('payment_provider_error', 'Stripe returned a checkout session without a URL');
    const pending = await deps.store.startPlanCheckout({ userId: request.userId, planKey: plan.key, checkoutSessionId: session.id });
    return { checkout_url: session.url, checkout_session_id: session.id, plan_key: plan.key, user_plan_id: pending.id };
  } catch (error) {
    return stripeFailure(error, deps.log, 'plan checkout');
  }
}

async function subscriptionOf(deps: SubscriptionDeps, userId: string): Promise<{ stripe: Stripe; plan: UserPlan; subscription: Stripe.Subscription }> {
  const stripe = requireStripe(deps.stripe);
  const plan = await deps.store.getUserPlan(userId);
  if (!plan?.stripe_subscription_id) {
    throw new PaymentError('plan_conflict', 'you have no subscription; subscribe to a plan first');
  }
  try {
    return { stripe, plan, subscription: await stripe.subscriptions.retrieve(plan.stripe_subscription_id) };
  } catch (error) {
    return stripeFailure(error, deps.log, 'subscription look-up');
  }
}

/** When the new plan applies: now (an upgrade, prorated) or at the period's end (a downgrade). */
export type ChangeResult = PlanChangeResponse;

/**
 * Moves the user's subscription to another plan. An upgrade replaces the items at once: the metered item keeps
 * its id with the new usage price (Stripe bills the usage so far at the old price), and the fee is added or
 * replaced with proration. A downgrade is scheduled (scheduled_plan_id) for the period's end.
 */
export async function changePlan(deps: SubscriptionDeps, request: { userId: string; planKey: string; idempotencyKey: string }): Promise<ChangeResult> {
  const { stripe, subscription } = await subscriptionOf(deps, request.userId);
  const change = await deps.store.requestPlanChange({ userId: request.userId, planKey: request.planKey });
  if (change.direction === 'downgrade') {
    const end = change.user_plan.current_period_end;
    return { direction: 'downgrade', plan_key: change.to.key, effective: 'period_end', effective_at: end?.toISOString() ?? null };
  }
  try {
    await moveSubscription(stripe, subscription, change.to, `plan-change:${request.userId}:${request.idempotencyKey}`);
  } catch (error) {
    return stripeFailure(error, deps.log, 'plan change');
  }
  return { direction: 'upgrade', plan_key: change.to.key, effective: 'now', effective_at: null };
}

export interface PlanPrices {
  id: string;
  key: string;
  stripe_fee_price_id: string | null;
  stripe_usage_price_id: string | null;
}

/**
 * Puts the subscription on the plan's prices, prorated: the metered item keeps its id with the new usage price
 * (Stripe bills the usage so far at the old price), the fee item is replaced, added or removed.
 */
export async function moveSubscription(stripe: Stripe, subscription: Stripe.Subscription, to: PlanPrices, idempotencyKey: string): Promise<Stripe.Subscription> {
  if (!to.stripe_usage_price_id) throw new PaymentError('plan_not_synced', `plan ${to.key} is not in Stripe yet (./launch.sh stripe-sync)`);
  const items: Stripe.SubscriptionUpdateParams.Item[] = [];
  for (const item of subscription.items.data) {
    if (item.price.recurring?.usage_type === 'metered') {
      items.push({ id: item.id, price: to.stripe_usage_price_id });
    } else if (to.stripe_fee_price_id) {
      items.push({ id: item.id, price: to.stripe_fee_price_id, quantity: 1 });
    } else {
      items.push({ id: item.id, deleted: true });
    }
  }
  if (to.stripe_fee_price_id && !subscription.items.data.some((i) => i.price.recurring?.usage_type !== 'metered')) {
    items.push({ price: to.stripe_fee_price_id, quantity: 1 });
  }
  return stripe.subscriptions.update(subscription.id, {
    items, proration_behavior: 'create_prorations', metadata: { plan_id: to.id, plan_key: to.key },
  }, { idempotencyKey });
}

/** Cancels at the period's end; customer.subscription.deleted ends the plan when Stripe does. */
export async function cancelPlan(deps: SubscriptionDeps, request: { userId: string }): Promise<PlanCancelResponse> {
  const { stripe, subscription, plan } = await subscriptionOf(deps, request.userId);
  try {
    await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true },
      { idempotencyKey: `plan-cancel:${request.userId}:${subscription.id}` });
  } catch (error) {
    return stripeFailure(error, deps.log, 'plan cancellation');
  }
  return { cancel_at_period_end: true, ends_at: plan.current_period_end?.toISOString() ?? null };
}

/** A billing portal session for the user's customer: change card, see invoices, cancel. */
export async function openBillingPortal(deps: SubscriptionDeps, request: { userId: string; returnUrl: string }): Promise<BillingPortalResponse> {
  const stripe = requireStripe(deps.stripe);
  const customer = await deps.store.getStripeCustomer(request.userId);
  if (!customer) throw new PaymentError('no_billing_account', 'you have no billing account yet; subscribe to a plan first');
  try {
    const session = await stripe.billingPortal.sessions.create({ customer, return_url: request.returnUrl });
    return { url: session.url };
  } catch (error) {
    return stripeFailure(error, deps.log, 'billing portal');
  }
}
