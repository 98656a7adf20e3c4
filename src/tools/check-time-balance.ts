import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { Balance } from '../billing/store.ts';
import { GUEST_NO_TRACKING, type BillingToolDeps } from './deps.ts';
import { speakDuration, speakWhen } from '../shared/speak-time.ts';

/** The balance as one or two sentences a voice can read out. */
export function describeBalance(balance: Balance, now: Date, timeZone = 'UTC'): string {
  if (balance.total_seconds <= 0 || balance.card_count === 0) {
    return 'You have no talk time left. You can buy a time package: ask me what the packages cost.';
  }
  const cards = balance.card_count === 1 ? 'on one time card' : `across ${balance.card_count} time cards`;
  let text = `You have ${speakDuration(balance.total_seconds)} of talk time left, ${cards}.`;
  const first = balance.cards[0];
  if (balance.next_expiry && first) {
    const when = speakWhen(balance.next_expiry, now, timeZone);
    text += balance.card_count === 1
      ? ` It expires ${when}.`
      : ` The next card to expire has ${speakDuration(first.remaining_seconds)} on it and expires ${when}.`;
  }
  return text;
}

export function checkTimeBalanceTool(deps: BillingToolDeps) {
  return llm.tool({
    description:
      "Look up how much prepaid talk time the caller has left right now, how many time cards it is on, and when the next card expires. Use it whenever the caller asks about their time, minutes, hours or balance.",
    parameters: z.object({}),
    execute: async () => {
      if (deps.userId === null) return GUEST_NO_TRACKING;
      // Read every time: the balance moves while the call is metered and when other calls or purchases land.
      const balance = await deps.store.getBalance(deps.userId);
      return describeBalance(balance, (deps.now ?? (() => new Date()))(), deps.timeZone);
    },
  });
}
