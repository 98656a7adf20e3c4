// What the billing tools say to a postpaid caller (a current user plan, docs/plans.md), in the plan's terms:
// minutes this period, cost so far, the spending cap and what is left of it. Pure wording over the store's
// answers (get_usage_current, a session's plan block, the session list's per-call cost); the tools read them.

import type { Plan } from '../billing/plan-types.ts';
import type { PricingTier, SessionState, UsageCurrent } from '../billing/store.ts';
import type { SessionPlan } from '../billing/types.ts';
import { showCost4, speakExactMoney, speakMoney, speakPerHour } from './speak-money.ts';
import { speakDuration, speakList, speakMinutesCharged, speakWhen } from '../shared/speak-time.ts';

/** A running call's plan pays for it (an active plan in a known period), so the spending cap is what ends it. */
export function planPays(plan: SessionPlan | null | undefined): plan is SessionPlan {
  return !!plan && plan.status === 'active' && plan.period_start !== null;
}

/** The period as get_usage_current tells it is the plan's own (not a prepaid user's calendar month). */
export function isPostpaid(usage: UsageCurrent): boolean {
  return usage.billing === 'postpaid';
}

/** "your spending cap of 50 dollars for this billing period (47 dollars and 90 cents of it is left)" */
function capWords(capCents: number, capLeftCents: number, currency: string): string {
  return `your spending cap of ${speakMoney(capCents, currency)} for this billing period ` +
    `(${speakMoney(capLeftCents, currency)} of it is left)`;
}

/** "47 dollars and 90 cents of your spending cap of 50 dollars is left this billing period." */
function capLeftSentence(capCents: number, capLeftCents: number, currency: string): string {
  return `${speakMoney(capLeftCents, currency)} of your spending cap of ${speakMoney(capCents, currency)} ` +
    'is left this billing period.';
}

function cardsWords(balanceSeconds: number, suspended: boolean): string {
  if (balanceSeconds <= 0) return suspended ? ' You have no time cards to use meanwhile.' : '';
  return suspended
    ? ` You have ${speakDuration(balanceSeconds)} on time cards, which still work meanwhile.`
    : ` You also have ${speakDuration(balanceSeconds)} on time cards, which are used before your plan's rate.`;
}

/** Whole minutes, rounded down: "1 minute", "1000 minutes" (included time is counted in minutes, as sold). */
function minutesWord(seconds: number): string {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

/** The period so far: "This billing period you have talked for 42 minutes, and your … plan has cost 2 dollars …". */
function periodSoFar(usage: UsageCurrent): string {
  const name = usage.plan?.name ?? 'monthly';
  const fee = usage.fee_cents > 0 ? `, including the monthly fee of ${speakMoney(usage.fee_cents, usage.currency)}` : '';
  return `This billing period you have talked for ${speakMinutesCharged(usage.total_seconds)}, and your ${name} plan ` +
    `has cost ${speakMoney(usage.plan_cost_cents, usage.currency)} so far${fee}.`;
}

/** check_time_balance for a postpaid caller: the period, included minutes, the cap, cards, the period's end. */
export function describePlanPeriod(usage: UsageCurrent, now: Date, timeZone = 'UTC'): string {
  if (usage.status === 'suspended') {
    return `Calls on your ${usage.plan ? `${usage.plan.name} ` : ''}plan are suspended because an invoice is unpaid. ` +
      'Once it is paid (the payment link is in the MindBot app), calls go on as before.' +
      cardsWords(usage.balance_seconds, true) + ` ${periodSoFar(usage)}`;
  }
  let text = periodSoFar(usage);
  if (usage.included_seconds > 0) {
    text += ` You have ${minutesWord(usage.included_seconds_left)} left of the ${minutesWord(usage.included_seconds)} ` +
      'your plan includes.';
  }
  if (usage.cap_cents !== null) {
    const left = usage.cap_left_cents ?? 0;
    text += left > 0
      ? ` Your spending cap is ${speakMoney(usage.cap_cents, usage.currency)}, and ${speakMoney(left, usage.currency)} of it is left.`
      : ` You have reached your spending cap of ${speakMoney(usage.cap_cents, usage.currency)} for this billing period.`;
  }
  text += cardsWords(usage.balance_seconds, false);
  // No end yet: the period has rolled over and Stripe's webhook with its end has not arrived.
  text += usage.period_end
    ? ` The period ends ${speakWhen(usage.period_end, now, timeZone)}.`
    : ' A new billing period has just begun.';
  return text;
}

/**
 * Said before the prepaid answer about a running call whose plan pays nothing (suspended or pending): the call
 * runs on the caller's time cards alone, so the card answer is the true one.
 */
export function planNotPayingNote(plan: SessionPlan | null | undefined): string {
  if (plan?.status === 'suspended') {
    return 'Your monthly plan is suspended because an invoice is unpaid, so this call runs on your time cards. ';
  }
  if (plan?.status === 'pending') return 'Your monthly plan is not confirmed yet, so this call runs on your time cards. ';
  return '';
}

/** A pending plan: calls use cards until Stripe confirms it. */
export const PENDING_PLAN_TEXT = 'Your monthly plan is waiting for its payment to be confirmed; until then calls use time cards.';

/** How long the call can go on: to payable_until, which counts cards, included minutes and the cap (017). */
export function planTimeLeftSeconds(state: SessionState, now: Date): number {
  return Math.max(0, Math.floor((state.payable_until.getTime() - now.getTime()) / 1000));
}

function costWords(costExact: string | number, currency: string): string {
  return `${speakExactMoney(costExact, currency)} (${showCost4(costExact, currency)})`;
}

/** estimate_session_cost for a call its plan pays: this call's cost so far, and how long the cap lets it go on. */
export function describePlanCost(state: SessionState, plan: SessionPlan, costExact: string | number, now: Date): string {
  const step = speakDuration(state.increment_seconds).replace(/^about /, '');
  const cost = costWords(costExact, plan.currency);
  if (state.status !== 'active') {
    return `This call has ended. It cost ${cost}, for ${speakMinutesCharged(state.billed_seconds)} charged. ` +
      capLeftSentence(plan.cap_cents, plan.cap_left_cents, plan.currency);
  }
  const cap = capWords(plan.cap_cents, plan.cap_left_cents, plan.currency);
  const left = planTimeLeftSeconds(state, now);
  const included = plan.included_left_seconds > 0
    ? ` Your included minutes are used first: ${minutesWord(plan.included_left_seconds)} of them are left.` : '';
  return `So far this call has cost ${cost}, for ${speakMinutesCharged(state.billed_seconds)} charged ` +
    `(in steps of ${step}, each paid when it begins).${included} ` +
    (left > 0
      ? `You can keep talking for ${speakDuration(left)} before you reach ${cap}.`
      : `You have reached ${cap}, so the call is about to end.`);
}

/** get_session_summary for a call its plan pays. */
export function describePlanSummary(state: SessionState, plan: SessionPlan, costExact: string | number, now: Date): string {
  const end = state.ended_at ?? now;
  const length = speakDuration(Math.max(0, (end.getTime() - state.started_at.getTime()) / 1000));
  const charged = speakMinutesCharged(state.billed_seconds);
  const cost = costWords(costExact, plan.currency);
  if (state.status !== 'active') {
    const how = state.status === 'cut_off' ? 'ended because your spending cap was reached' : 'has ended';
    return `This call ${how}. It lasted ${length}, was charged ${charged} and cost ${cost}. ` +
      capLeftSentence(plan.cap_cents, plan.cap_left_cents, plan.currency);
  }
  const cap = capWords(plan.cap_cents, plan.cap_left_cents, plan.currency);
  const left = planTimeLeftSeconds(state, now);
  const going = `This call has been going for ${length}, with ${charged} charged so far, costing ${cost}.`;
  return left > 0
    ? `${going} You can keep talking for ${speakDuration(left)} before you reach ${cap}.`
    : `${going} You have reached ${cap}, so the call is about to end.`;
}

/** "the Starter Pack 9 dollars and 99 cents" (a pack's price over its hours, bonus included). */
function packPerHour(tier: PricingTier): string {
  const seconds = tier.base_seconds + tier.bonus_seconds;
  return `the ${tier.name} ${speakExactMoney(seconds > 0 ? tier.price_cents * 3600 / seconds : 0, tier.currency)}`;
}

/** One postpaid plan as the caller compares it per hour. */
export function describePlan(plan: Plan): string {
  const rate = plan.price_per_hour.rate_cents_per_hour;
  const first = plan.tiers[0];
  const last = plan.tiers[plan.tiers.length - 1];
  switch (plan.kind) {
    case 'payg':
      return `${plan.name}, with no monthly fee: ${speakPerHour(rate ?? 0, plan.currency)}` +
        (first ? ` (${speakExactMoney(first.cents_per_minute, plan.currency)} a minute)` : '');
    case 'tiered':
      return `${plan.name}, with no monthly fee: ${speakPerHour(rate ?? 0, plan.currency)} at first, falling to ` +
        `${speakPerHour(last?.cents_per_hour ?? 0, plan.currency)} as your minutes add up each month`;
    case 'subscription': {
      const perHourIncluded = plan.price_per_hour.included_cents_per_hour;
      return `${plan.name}: ${speakMoney(plan.monthly_fee_cents, plan.currency)} a month with ` +
        `${minutesWord(plan.included_seconds)} included` +
        (perHourIncluded !== null ? ` (${speakPerHour(perHourIncluded, plan.currency)} if you use them all)` : '') +
        `, then ${speakPerHour(rate ?? 0, plan.currency)}`;
    }
    default:
      return plan.name;
  }
}

/** The packs per hour beside the monthly plans (the plans that are not prepaid). Empty when there is nothing to add. */
export function describePlansBesidePacks(tiers: readonly PricingTier[], plans: readonly Plan[]): string {
  const monthly = plans.filter((p) => p.kind !== 'prepaid' && p.status === 'active');
  const parts: string[] = [];
  if (tiers.length > 0 && monthly.length > 0) parts.push(`Per hour, the packs come to ${speakList(tiers.map(packPerHour))}.`);
  if (monthly.length > 0) {
    parts.push(`Instead of packs, you can be billed monthly for what you use: ${monthly.map(describePlan).join('; ')}. ` +
      'Monthly plans are chosen in the MindBot app, with a spending cap you set.');
  }
  return parts.join(' ');
}
