import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { SessionState } from '../billing/store.ts';
import { readCallState, type BillingToolDeps } from './deps.ts';
import { describePlanCost, describePlanPeriod, isPostpaid, planNotPayingNote, planPays } from './plan-answers.ts';
import { speakDuration, speakMinutesCharged } from '../shared/speak-time.ts';

/** Talk time left for this call: what is paid for it and not yet used, plus the balance (live). */
export function talkTimeLeftSeconds(state: SessionState, balanceSeconds: number, now: Date): number {
  const paidAhead = Math.max(0, state.covered_until.getTime() - now.getTime()) / 1000;
  return Math.floor(paidAhead + Math.max(0, balanceSeconds));
}

/** The balance, read live; the controller's last answer only when the store cannot be reached. */
export async function liveBalanceSeconds(deps: BillingToolDeps, state: SessionState | null): Promise<number> {
  try {
    return (await deps.store.getBalance(deps.userId!)).total_seconds;
  } catch (error) {
    if (state) return state.remaining_seconds;
    throw error;
  }
}

/**
 * What this call has cost in the plan's terms (its card seconds at what they were paid for, plus its usage
 * charges exact: 018's per-call cost), read from the caller's recent calls.
 */
export async function callCostExact(deps: BillingToolDeps, sessionId: string): Promise<number> {
  const calls = await deps.store.listSessions({ userId: deps.userId!, limit: 20 });
  const call = calls.find((c) => c.session_id === sessionId);
  if (!call) throw new llm.ToolError("This call's cost could not be found right now. Apologize and suggest asking again in a moment.");
  return call.cost_cents;
}

export function describeCost(state: SessionState, balanceSeconds: number, now: Date): string {
  const step = speakDuration(state.increment_seconds).replace(/^about /, '');
  if (state.status !== 'active') {
    return `This call has ended. It was charged ${speakMinutesCharged(state.billed_seconds)} of talk time, ` +
      `and ${speakDuration(balanceSeconds)} is left on your balance.`;
  }
  const left = talkTimeLeftSeconds(state, balanceSeconds, now);
  return `So far this call has used ${speakMinutesCharged(state.billed_seconds)} of your talk time ` +
    `(it is charged in steps of ${step}, each paid when it begins). ` +
    (left > 0
      ? `One minute of talking uses one minute of time, so what you have left lasts ${speakDuration(left)} more.`
      : 'Your time is about to run out.');
}

export function estimateSessionCostTool(deps: BillingToolDeps) {
  return llm.tool({
    description:
      'Tell the caller what this call has cost so far (the talk time charged, or on a monthly plan the money) and how much longer their time or spending cap lasts if they keep talking. Use it for questions like "how much has this call cost" or "how long can I keep talking".',
    parameters: z.object({}),
    execute: async () => {
      if (deps.userId === null) {
        return "You're talking as a guest, so this call isn't charged to any balance and your time isn't tracked. " +
          'With a free account you can buy talk time and see what each call uses.';
      }
      const now = (deps.now ?? (() => new Date()))();
      const state = readCallState(deps.call);
      if (state && planPays(state.plan)) {
        return describePlanCost(state, state.plan, await callCostExact(deps, state.session_id), now);
      }
      if (!state) {
        const usage = await deps.store.getUsageCurrent(deps.userId);
        if (isPostpaid(usage)) {
          return `Billing for this call hasn't started yet, so nothing has been charged. ${describePlanPeriod(usage, now, deps.timeZone)}`;
        }
      }
      const balance = await liveBalanceSeconds(deps, state);
      if (!state) {
        return `Billing for this call hasn't started yet, so nothing has been charged. ` +
          (balance > 0
            ? `Your balance of ${speakDuration(balance)} lasts that long in calls.`
            : 'You have no talk time left; you can buy a package.');
      }
      return planNotPayingNote(state.plan) + describeCost(state, balance, now);
    },
  });
}
