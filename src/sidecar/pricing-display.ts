import type { PricingTier } from '../billing/store.ts';
import type { PricingTierView } from '../shared/api-contracts.ts';

export type { PricingTierView };


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
