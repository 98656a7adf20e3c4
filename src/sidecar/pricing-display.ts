import type { PricingTier } from '../billing/store.ts';

/** A tier as the seeds' clients read it from GET /time/pricing. */
export interface PricingTierView {
  id: string;
  name: string;
  hours: number;
  price_cents: number;
  price_display: string;
  currency: string;
  bonus_minutes: number;
  total_minutes: number;
  description: string;
  /** The price of one hour of talk time, bonus included, rounded to the cent: what makes packages comparable. */
  price_per_hour_cents: number;
  price_per_hour_display: string;
}

export function formatPrice(cents: number, currency: string): string {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(cents / 100);
}

/** Cents per hour of the whole card (base and bonus), rounded to the cent; 0 for a card without time. */
export function pricePerHourCents(tier: Pick<PricingTier, 'price_cents' | 'total_seconds'>): number {
  if (tier.total_seconds <= 0) return 0;
  return Math.round((tier.price_cents * 3600) / tier.total_seconds);
}

export function pricingTierView(tier: PricingTier): PricingTierView {
  return {
    id: tier.id,
    name: tier.name,
    hours: tier.base_seconds / 3600,
    price_cents: tier.price_cents,
    price_display: formatPrice(tier.price_cents, tier.currency),
    currency: tier.currency,
    bonus_minutes: Math.floor(tier.bonus_seconds / 60),
    total_minutes: Math.floor(tier.total_seconds / 60),
    description: tier.description,
    price_per_hour_cents: pricePerHourCents(tier),
    price_per_hour_display: formatPrice(pricePerHourCents(tier), tier.currency),
  };
}
