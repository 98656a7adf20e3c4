import { llm } from '@livekit/agents';
import { z } from 'zod';
import type { SessionState } from '../billing/store.ts';
import { readCallPhase, readCallState, type BillingToolDeps } from './deps.ts';
import { callCostExact, liveBalanceSeconds, talkTimeLeftSeconds } from './estimate-session-cost.ts';
import { describePlanPeriod, describePlanSummary, isPostpaid, planNotPayingNote, planPays } from './plan-answers.ts';
import { speakDuration, speakMinutesCharged } from '../shared/speak-time.ts';

function timeLeft(seconds: number): string {
  return seconds > 0 ? `You have ${speakDuration(seconds)} of talk time left` : 'You have no talk time left';
}

export function describeSummary(state: SessionState, balanceSeconds: number, now: Date): string {
  const end = state.ended_at ?? now;
  const length = Math.max(0, (end.getTime() - state.started_at.getTime()) / 1000);
  const charged = speakMinutesCharged(state.billed_seconds);
  if (state.status !== 'active') {
    const how = state.status === 'cut_off' ? 'ended because the time ran out' : 'has ended';
    return `This call ${how}. It lasted ${speakDuration(length)} and was charged ${charged}. ` +
      `${timeLeft(balanceSeconds)}.`;
  }
  const left = talkTimeLeftSeconds(state, balanceSeconds, now);
  const going = `This call has been going for ${speakDuration(length)}, with ${charged} charged so far.`;
  return left > 0
    ? `${going} You can keep talking for ${speakDuration(left)}, counting what is still on your balance.`
    : `${going} Your talk time is about to run out.`;
}

export function getSessionSummaryTool(deps: BillingToolDeps) {
  return llm.tool({
    description:
      'Summarize the current call for the caller: how long it has lasted, how much talk time it has been charged (on a monthly plan, what it cost), and how much time is left. Use it when the caller asks for a summary of this call or their usage.',
    parameters: z.object({}),
    execute: async () => {
      if (deps.userId === null) {
        return "This is a guest call: it isn't billed and its time isn't recorded, so there is no usage to summarize. " +
          'A free account keeps a record of every call and the time it used.';
      }
      const now = (deps.now ?? (() => new Date()))();
      const state = readCallState(deps.call);
      if (state && planPays(state.plan)) {
        return describePlanSummary(state, state.plan, await callCostExact(deps, state.session_id), now);
      }
      if (!state) {
        const usage = await deps.store.getUsageCurrent(deps.userId);
        if (isPostpaid(usage)) {
          const why = readCallPhase(deps.call) === 'not_started' ? "this call wasn't started" : "billing for this call hasn't started yet";
          return `There is nothing to summarize: ${why}. ${describePlanPeriod(usage, now, deps.timeZone)}`;
        }
      }
      const balance = await liveBalanceSeconds(deps, state);
      if (!state) {
        const phase = readCallPhase(deps.call);
        const why = phase === 'not_started' ? "this call wasn't started because there was no talk time left"
          : "billing for this call hasn't started yet";
        return `There is nothing to summarize: ${why}. ${timeLeft(balance)}.`;
      }
      return planNotPayingNote(state.plan) + describeSummary(state, balance, now);
    },
  });
}
