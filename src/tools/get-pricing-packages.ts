import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { PricingTier } from '../billing/store.ts';
import type { BillingToolDeps } from './deps.ts';
import { describePlansBesidePacks } from './plan-answers.ts';
import { speakDuration, speakList, speakPrice } from '../shared/speak-time.ts';

/** "the Basic Pack (id basic_5h): 5 hours plus 30 bonus minutes for 44 dollars and 99 cents". */
export function describeTier(tier: PricingTier): string {
  const time = tier.bonus_seconds > 0
    ? `${speakDuration(tier.base_seconds)} plus ${speakDuration(tier.bonus_seconds)} free`
    : speakDuration(tier.base_seconds);
  return `the ${tier.name} (id ${tier.id}): ${time} for ${speakPrice(tier.price_cents, tier.currency)}`;
}

export function describeTiers(tiers: readonly PricingTier[]): string {
  if (tiers.length === 0) return 'No time packages are on sale right now.';
  const intro = tiers.length === 1 ? 'There is one package' : `There are ${tiers.length} packages`;
  return `${intro}: ${speakList(tiers.map(describeTier))}.`;
}

export function getPricingPackagesTool(deps: BillingToolDeps) {
  return llm.tool({
    description:
      'List the prepaid talk-time packages on sale, with their hours, bonus time and price, and the monthly plans (pay as you go, volume, subscription) compared per hour. Use it when the caller asks about prices, packages, plans or buying more time. Each package has an id to pass to start_purchase_process.',
    parameters: z.object({}),
    execute: async () => {
      const [tiers, { plans }] = await Promise.all([deps.store.listPricingTiers(), deps.store.listPlans()]);
      const beside = describePlansBesidePacks(tiers, plans);
      const text = beside ? `${describeTiers(tiers)} ${beside}` : describeTiers(tiers);
      if (deps.userId === null && tiers.length > 0) {
        return `${text} To buy one, the caller first needs to create a free account; as a guest they cannot buy time.`;
      }
      return text;
    },
  });
}
