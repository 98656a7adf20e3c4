import Stripe from 'stripe';

// The arithmetic of the fake Stripe's usage-based billing, apart from its HTTP and its state: what a price
// charges for a quantity, how a meter aggregates events, and where a billing period ends. Decimal values
// (unit_amount_decimal, meter values) are exact (stripe-node's own Decimal); an amount becomes integer minor
// units only once, when a line's amount is rounded half-up (half away from zero).

export type Dec = ReturnType<typeof Stripe.Decimal.from>;
export const dec = (value: string | number | bigint): Dec => Stripe.Decimal.from(value);
export const ZERO = dec(0);

export interface PriceTier {
  flat_amount: number | null;
  flat_amount_decimal: string | null;
  unit_amount: number | null;
  unit_amount_decimal: string | null;
  /** null is "inf", the last tier. */
  up_to: number | null;
}

/** The parts of a Price that decide what a quantity costs. */
export interface PriceTerms {
  billing_scheme: 'per_unit' | 'tiered';
  tiers_mode: 'graduated' | 'volume' | null;
  tiers: PriceTier[] | null;
  unit_amount_decimal: string | null;
  transform_quantity: { divide_by: number; round: 'up' | 'down' } | null;
}

export interface TierCharge {
  /** 1-based, as Stripe numbers tiers on invoices. */
  tier: number;
  quantity: Dec;
  amount: Dec;
}

export interface PriceCharge {
  /** The exact amount in minor units, before rounding. */
  exact: Dec;
  /** The quantity after transform_quantity. */
  quantity: Dec;
  /** For tiered prices, what each tier reached contributes. */
  tiers: TierCharge[];
}

const unitOf = (tier: PriceTier): Dec => dec(tier.unit_amount_decimal ?? tier.unit_amount ?? 0);
const flatOf = (tier: PriceTier): Dec => dec(tier.flat_amount_decimal ?? tier.flat_amount ?? 0);

/**
 * What `quantity` costs under a price, exactly. Graduated tiers charge each tier's units at that tier's rate
 * plus the flat amount of every tier the quantity reaches into; volume tiers charge every unit at the rate
 * of the tier the whole quantity falls in. A quantity of zero reaches no tier and costs nothing (assumed:
 * Stripe's documents do not say whether a first tier's flat amount is charged for zero usage).
 */
export function priceCharge(terms: PriceTerms, quantity: Dec): PriceCharge {
  if (terms.billing_scheme === 'per_unit') {
    let q = quantity;
    if (terms.transform_quantity) {
      const divided = q.div(dec(terms.transform_quantity.divide_by), 0, terms.transform_quantity.round === 'up' ? 'ceil' : 'floor');
      q = divided;
    }
    return { exact: q.mul(dec(terms.unit_amount_decimal ?? 0)), quantity: q, tiers: [] };
  }
  const tiers = terms.tiers ?? [];
  const charges: TierCharge[] = [];
  if (quantity.isZero() || quantity.isNegative()) return { exact: ZERO, quantity, tiers: charges };
  if (terms.tiers_mode === 'volume') {
    const index = tiers.findIndex((t) => t.up_to === null || quantity.lte(dec(t.up_to)));
    const tier = tiers[index]!;
    const amount = quantity.mul(unitOf(tier)).add(flatOf(tier));
    charges.push({ tier: index + 1, quantity, amount });
    return { exact: amount, quantity, tiers: charges };
  }
  let lower = ZERO;
  let total = ZERO;
  for (let i = 0; i < tiers.length; i++) {
    const tier = tiers[i]!;
    if (quantity.lte(lower)) break;
    const upper = tier.up_to === null ? quantity : (dec(tier.up_to).lt(quantity) ? dec(tier.up_to) : quantity);
    const inTier = upper.sub(lower);
    const amount = inTier.mul(unitOf(tier)).add(flatOf(tier));
    charges.push({ tier: i + 1, quantity: inTier, amount });
    total = total.add(amount);
    if (tier.up_to === null) break;
    lower = dec(tier.up_to);
  }
  return { exact: total, quantity, tiers: charges };
}

/** Integer minor units: the one rounding of a line (half-up, i.e. half away from zero). */
export function roundMinor(exact: Dec): number {
  return Number(exact.toFixed(0, 'half-up'));
}

/** What a price charges for a quantity, in integer minor units. */
export function priceAmount(terms: PriceTerms, quantity: Dec): number {
  return roundMinor(priceCharge(terms, quantity).exact);
}

// ---------- meters ----------

export interface MeteredValue {
  timestamp: number;
  value: Dec;
  /** Arrival order, to break timestamp ties for the `last` formula. */
  seq: number;
}

/** A meter's aggregate over events: sum of values, number of events, or the value of the latest one. */
export function aggregate(formula: 'sum' | 'count' | 'last', events: MeteredValue[]): Dec {
  if (formula === 'count') return dec(events.length);
  if (formula === 'sum') return events.reduce((acc, e) => acc.add(e.value), ZERO);
  let latest: MeteredValue | null = null;
  for (const e of events) if (!latest || e.timestamp > latest.timestamp || (e.timestamp === latest.timestamp && e.seq > latest.seq)) latest = e;
  return latest ? latest.value : ZERO;
}

// ---------- billing periods ----------

export type Interval = 'day' | 'week' | 'month' | 'year';

/**
 * The k-th boundary after `anchor` for a recurring interval. Months and years are calendar steps from the
 * anchor itself (not chained), clamped to the month's last day, so an anchor on the 31st bills on the 28th/29th
 * in February and on the 31st again in March, as Stripe's billing_cycle_anchor does.
 */
export function periodBoundary(anchor: number, interval: Interval, intervalCount: number, k: number): number {
  if (interval === 'day') return anchor + 86_400 * intervalCount * k;
  if (interval === 'week') return anchor + 7 * 86_400 * intervalCount * k;
  const d = new Date(anchor * 1000);
  const months = d.getUTCMonth() + (interval === 'year' ? 12 : 1) * intervalCount * k;
  const year = d.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(d.getUTCDate(), lastDay);
  return Date.UTC(year, month, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()) / 1000;
}

/** A decimal string as Stripe writes `*_decimal` fields: no exponent, no trailing zeros. */
export function decimalString(value: Dec): string {
  return value.toString();
}
