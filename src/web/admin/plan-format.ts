// How plan prices read on the admin page. Rates are exact decimals of a cent (up to 4 places, docs/plans.md), so
// a rate is shown with every digit it has; an hour's price is what makes plans of different kinds comparable.
import { formatMoney } from '../format.ts';
import type { AdminPlan } from '../../shared/admin-contracts.ts';

export const KIND_NAMES: Record<AdminPlan['kind'], string> = {
  prepaid: 'Prepaid time packs',
  payg: 'Pay as you go',
  tiered: 'Tiered by volume',
  subscription: 'Subscription + overage',
};

/** 4.0833 cents a minute in usd → "$0.040833/min": the rate exactly as it is charged before rounding. */
export function formatRate(centsPerMinute: number, currency: string): string {
  const amount = new Intl.NumberFormat(undefined, {
    style: 'currency', currency: currency.toUpperCase(), minimumFractionDigits: 2, maximumFractionDigits: 6,
  }).format(centsPerMinute / 100);
  return `${amount}/min`;
}

/** An hour's price, to the cent. */
export const formatHour = (centsPerHour: number, currency: string) => `${formatMoney(Math.round(centsPerHour), currency)}/h`;

/** A tier's range of the period's minutes: "0–100 min", "from 100 min". */
export function tierRange(tiers: AdminPlan['tiers'], index: number): string {
  const from = index === 0 ? 0 : (tiers[index - 1]!.up_to_seconds ?? 0) / 60;
  const to = tiers[index]!.up_to_seconds;
  const n = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  if (tiers.length === 1) return 'every minute';
  return to === null ? `from ${n.format(from)} min` : `${n.format(from)}–${n.format(to / 60)} min`;
}
