import Stripe from 'stripe';
import type { BillingStore } from '../billing/store.ts';
import type { SyncPlan } from '../billing/subscription-types.ts';

// `./launch.sh stripe-sync`: makes Stripe's catalogue what the plans in the database say (docs/plans.md,
// "Stripe"). Everything is found again before anything is created — the meter by its event name, a plan's
// Product by its own id (mindbot_plan_<key>), each Price by its lookup key — and every create carries an
// idempotency key, so a second run (or a run after a crash half-way) creates nothing twice. Prices are
// immutable in Stripe, as plan versions are here: a new version gets new prices; a retired version's prices
// are set inactive (subscriptions on them keep running until they move).

export const METER_EVENT_NAME = 'mindbot_voice_seconds';

export const lookupKey = (plan: Pick<SyncPlan, 'key' | 'version'>, part: 'usage' | 'fee') => `mindbot_${plan.key}_v${plan.version}_${part}`;
export const productId = (planKey: string) => `mindbot_plan_${planKey}`;

export interface SyncReport {
  /** What was created or changed, one line each ("created price mindbot_payg_v1_usage (price_…)"). */
  created: string[];
  /** What was there already and was left as it is. */
  left: string[];
}

function isMissing(error: unknown): boolean {
  return error instanceof Stripe.errors.StripeInvalidRequestError && error.statusCode === 404;
}

async function ensureMeter(stripe: Stripe, report: SyncReport): Promise<Stripe.Billing.Meter> {
  const meters = await stripe.billing.meters.list({ status: 'active', limit: 100 }).autoPagingToArray({ limit: 1000 });
  const found = meters.find((m) => m.event_name === METER_EVENT_NAME);
  if (found) {
    report.left.push(`meter ${METER_EVENT_NAME} (${found.id})`);
    return found;
  }
  const meter = await stripe.billing.meters.create({
    display_name: 'MindBot voice seconds',
    event_name: METER_EVENT_NAME,
    default_aggregation: { formula: 'sum' },
    customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
    value_settings: { event_payload_key: 'value' },
  }, { idempotencyKey: `mindbot-meter-${METER_EVENT_NAME}` });
  report.created.push(`meter ${METER_EVENT_NAME} (${meter.id})`);
  return meter;
}

async function ensureProduct(stripe: Stripe, plan: SyncPlan, report: SyncReport): Promise<string> {
  const id = productId(plan.key);
  try {
    const product = await stripe.products.retrieve(id);
    if (product.name !== plan.name || !product.active) {
      await stripe.products.update(id, { name: plan.name, active: true });
      report.created.push(`updated product ${id} (name ${JSON.stringify(plan.name)})`);
    } else {
      report.left.push(`product ${id}`);
    }
    return id;
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  await stripe.products.create({
    id, name: plan.name, metadata: { mindbot_plan_key: plan.key },
    ...(plan.description && { description: plan.description }),
  }, { idempotencyKey: `mindbot-product-${plan.key}` });
  report.created.push(`product ${id}`);
  return id;
}

/** The usage price's graduated tiers: the included seconds free first (subscriptions), then the plan's rates. */
export function usageTiers(plan: SyncPlan): Stripe.PriceCreateParams.Tier[] {
  const tiers: Stripe.PriceCreateParams.Tier[] = [];
  if (plan.included_seconds > 0) tiers.push({ up_to: plan.included_seconds, unit_amount_decimal: Stripe.Decimal.from('0') });
  for (const tier of plan.tiers) {
    // Plan tiers count billable seconds (after the included ones); Stripe's count all the period's seconds.
    tiers.push({
      up_to: tier.up_to_seconds === null ? 'inf' : plan.included_seconds + tier.up_to_seconds,
      unit_amount_decimal: Stripe.Decimal.from(tier.cents_per_second),
    });
  }
  return tiers;
}

async function ensurePrice(
  stripe: Stripe, plan: SyncPlan, part: 'usage' | 'fee', product: string, meterId: string, report: SyncReport,
): Promise<string> {
  const key = lookupKey(plan, part);
  const [found] = (await stripe.prices.list({ lookup_keys: [key], limit: 1 })).data;
  if (found) {
    if (found.currency !== plan.currency || (part === 'fee' && found.unit_amount !== plan.monthly_fee_cents)) {
      throw new Error(`Stripe price ${found.id} (${key}) is not what plan ${plan.key} v${plan.version} says; `
        + 'a plan version never changes: edit the plan as a new version');
    }
    report.left.push(`price ${key} (${found.id})`);
    return found.id;
  }
  const common = {
    product, currency: plan.currency, lookup_key: key, nickname: `${plan.name} v${plan.version} ${part}`,
    metadata: { mindbot_plan_id: plan.id, mindbot_plan_key: plan.key, mindbot_plan_version: String(plan.version) },
  };
  const price = part === 'fee'
    ? await stripe.prices.create({ ...common, unit_amount: plan.monthly_fee_cents, recurring: { interval: 'month', usage_type: 'licensed' } },
      { idempotencyKey: `mindbot-price-${key}` })
    : await stripe.prices.create({
        ...common,
        recurring: { interval: 'month', usage_type: 'metered', meter: meterId },
        billing_scheme: 'tiered', tiers_mode: 'graduated', tiers: usageTiers(plan),
      }, { idempotencyKey: `mindbot-price-${key}` });
  report.created.push(`price ${key} (${price.id})`);
  return price.id;
}

async function retirePrices(stripe: Stripe, plan: SyncPlan, report: SyncReport): Promise<void> {
  for (const priceId of [plan.stripe_usage_price_id, plan.stripe_fee_price_id]) {
    if (!priceId) continue;
    const price = await stripe.prices.retrieve(priceId);
    if (price.active) {
      await stripe.prices.update(priceId, { active: false });
      report.created.push(`deactivated price ${price.lookup_key ?? priceId} (${priceId}) of retired ${plan.key} v${plan.version}`);
    } else {
      report.left.push(`inactive price ${price.lookup_key ?? priceId} (${priceId})`);
    }
  }
}

export async function syncStripeCatalogue(stripe: Stripe, store: BillingStore): Promise<SyncReport> {
  const report: SyncReport = { created: [], left: [] };
  const plans = await store.listPlansForStripeSync();
  const active = plans.filter((p) => p.status === 'active');
  if (active.length > 0) {
    const meter = await ensureMeter(stripe, report);
    for (const plan of active) {
      const product = await ensureProduct(stripe, plan, report);
      const usage = await ensurePrice(stripe, plan, 'usage', product, meter.id, report);
      const fee = plan.kind === 'subscription' ? await ensurePrice(stripe, plan, 'fee', product, meter.id, report) : null;
      const written = await store.recordPlanStripeIds({ planId: plan.id, productId: product, feePriceId: fee, usagePriceId: usage });
      if (written.changed) report.created.push(`plan ${plan.key} v${plan.version}: Stripe ids written back`);
    }
  }
  for (const plan of plans.filter((p) => p.status === 'retired')) await retirePrices(stripe, plan, report);
  return report;
}
