import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { Balance } from '../billing/store.ts';
import { GUEST_NO_TRACKING, type BillingToolDeps } from './deps.ts';
import { describePlanPeriod, isPostpaid, PENDING_PLAN_TEXT } from './plan-answers.ts';
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
      "Look up how much talk time the caller has left right now: prepaid time cards (how many, when the next expires) or, on a monthly plan, this period's minutes, cost so far, spending cap and what is left of it. Use it whenever the caller asks about their time, minutes, hours, balance, usage or bill.",
    parameters: z.object({}),
    execute: async () => {
      if (deps.userId === null) return GUEST_NO_TRACKING;
      // Read every time: the balance moves while the call is metered and when other calls or purchases land.
      const now = (deps.now ?? (() => new Date()))();
      const usage = await deps.store.getUsageCurrent(deps.userId);
      if (isPostpaid(usage)) return describePlanPeriod(usage, now, deps.timeZone);
      const balance = describeBalance(await deps.store.getBalance(deps.userId), now, deps.timeZone);
      return usage.status === 'pending' ? `${PENDING_PLAN_TEXT} ${balance}` : balance;
    },
  });
}
