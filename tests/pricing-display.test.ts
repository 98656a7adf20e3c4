// What GET /time/pricing says about each package: the figures the buy screen shows as they are.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pricePerHourCents, pricingTierView } from '../src/sidecar/pricing-display.ts';
import type { PricingTier } from '../src/billing/store.ts';

const tier = (over: Partial<PricingTier>): PricingTier => ({
  id: 'basic_5h', name: 'Basic Pack', description: 'Great for regular users', base_seconds: 5 * 3600,
  bonus_seconds: 30 * 60, total_seconds: 5.5 * 3600, price_cents: 4499, currency: 'usd', active: true,
  sort_order: 20, stripe_price_id: null, ...over,
});

describe('pricing display', () => {
  it('prices an hour over the whole card, bonus included, to the cent', () => {
    for (const [t, cents] of [
      [{ total_seconds: 3600, price_cents: 999 }, 999],
      [{ total_seconds: 5.5 * 3600, price_cents: 4499 }, 818], // 5 h + 30 min bonus: 817.99…
      [{ total_seconds: 12 * 3600, price_cents: 7999 }, 667], // 10 h + 2 h bonus: 666.58…
      [{ total_seconds: 60 * 3600, price_cents: 29999 }, 500], // 50 h + 10 h bonus: 499.98…
      [{ total_seconds: 0, price_cents: 500 }, 0],
    ] as const) {
      assert.equal(pricePerHourCents(t), cents, JSON.stringify(t));
    }
  });

  it('shows the package with its price, bonus and price per hour', () => {
    assert.deepEqual(pricingTierView(tier({})), {
      id: 'basic_5h', name: 'Basic Pack', hours: 5, price_cents: 4499, price_display: '$44.99', currency: 'usd',
      bonus_minutes: 30, total_minutes: 330, description: 'Great for regular users',
      price_per_hour_cents: 818, price_per_hour_display: '$8.18',
    });
    assert.equal(pricingTierView(tier({ currency: 'eur', price_cents: 1000, total_seconds: 7200 })).price_per_hour_display, '€5.00');
  });
});
