import { randomUUID } from 'node:crypto';
import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { PricingTier } from '../billing/store.ts';
import { isPaymentError } from '../payments/errors.ts';
import { startPurchase } from '../payments/purchases.ts';
import type { BillingToolDeps } from './deps.ts';
import { describeTier } from './get-pricing-packages.ts';
import { speakList } from '../shared/speak-time.ts';

import { PURCHASE_LINK_TOPIC } from '../shared/call-protocol.ts';

/** The LiveKit text-stream topic the client listens on for the Checkout link (see purchaseLinkSender). */
export { PURCHASE_LINK_TOPIC };

/**
 * The production SendPurchaseLink: the Checkout URL as the text of a text stream on PURCHASE_LINK_TOPIC, to
 * the caller only, with the package and Checkout Session as stream attributes. `participant` is the agent's
 * room.localParticipant.
 */
export function purchaseLinkSender(
  participant: {
    sendText(text: string, options?: { topic?: string; attributes?: Record<string, string>; destinationIdentities?: string[] }): Promise<unknown>;
  },
  callerIdentity: string,
) {
  return async (url: string, info: { packageId: string; checkoutSessionId: string }): Promise<void> => {
    await participant.sendText(url, {
      topic: PURCHASE_LINK_TOPIC,
      destinationIdentities: [callerIdentity],
      attributes: { package_id: info.packageId, checkout_session_id: info.checkoutSessionId },
    });
  };
}

function unknownPackageAnswer(asked: string, tiers: readonly PricingTier[]): string {
  if (tiers.length === 0) return `There is no package called "${asked}", and no packages are on sale right now.`;
  return `There is no package called "${asked}". The packages are ${speakList(tiers.map(describeTier))}. ` +
    'Ask the caller which one they want, then call this again with its id.';
}

/** The tier the caller meant: its id, or (as the model may pass it) its name, in any case. */
function matchTier(tiers: readonly PricingTier[], asked: string): PricingTier | undefined {
  const key = asked.trim().toLowerCase();
  return tiers.find((t) => t.id === key) ?? tiers.find((t) => t.name.toLowerCase() === key);
}

export function startPurchaseProcessTool(deps: BillingToolDeps) {
  const callKey = deps.callKey ?? randomUUID();
  return llm.tool({
    description:
      "Start buying a talk-time package: creates a secure payment link for the package and shows it on the caller's screen. " +
      'Call it only after the caller has chosen a package (ids come from get_pricing_packages) and agreed to buy it.',
    parameters: z.object({
      package_id: z.string().min(1).max(100).describe('The id of the package, e.g. basic_5h, from get_pricing_packages'),
    }),
    execute: async ({ package_id }, { toolCallId }) => {
      const userId = deps.userId;
      if (userId === null) {
        return "Guests can't buy talk time. The caller needs to create a free account first; then they can buy a package here.";
      }
      if (!deps.purchase || !deps.sendPurchaseLink) {
        return "Purchases can't be made in this call. The caller can buy time in the MindBot app instead.";
      }
      const tiers = await deps.store.listPricingTiers();
      const tier = matchTier(tiers, package_id);
      if (!tier) return unknownPackageAnswer(package_id, tiers);
      let result;
      try {
        result = await startPurchase({ ...deps.purchase, store: deps.store }, {
          userId,
          packageId: tier.id,
          // One Checkout Session per tool call: a replayed call gets the same link, a new request a new one.
          idempotencyKey: `voice:${callKey}:${toolCallId}:${tier.id}`,
        });
      } catch (error) {
        if (isPaymentError(error, 'unknown_package')) {
          return unknownPackageAnswer(package_id, await deps.store.listPricingTiers());
        }
        if (isPaymentError(error, 'payments_unavailable')) {
          return "Purchases aren't available right now. The caller can try again later or buy time in the MindBot app.";
        }
        deps.purchase.log.warn({ err: error, userId, packageId: tier.id }, 'voice purchase could not be started');
        throw new llm.ToolError('The payment link could not be created right now. Apologize and suggest trying again in a moment.');
      }
      if (result.kind !== 'checkout') {
        throw new llm.ToolError('The payment link could not be created right now.');
      }
      try {
        await deps.sendPurchaseLink(result.checkout_url, {
          packageId: result.package_id,
          checkoutSessionId: result.checkout_session_id,
        });
      } catch (error) {
        deps.purchase.log.warn({ err: error, userId }, 'the purchase link could not be sent to the caller');
        throw new llm.ToolError("The payment link could not be shown on the caller's screen. Suggest buying in the MindBot app instead.");
      }
      return `A secure payment link for ${describeTier(tier)} is now on the caller's screen. ` +
        'Tell them to open it to pay; the time is added to their balance as soon as the payment goes through.';
    },
  });
}
