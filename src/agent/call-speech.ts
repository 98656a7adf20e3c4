// What MindBot says at the turns of a call that the billing decides (no time left, warnings, cut-off, outage,
// guests, shutdown). Plain sentences for TTS; the durations and prices are spoken, never written as digits.
import type { SessionState, UsageCurrent } from '../billing/store.ts';
import { speakMoney } from '../tools/speak-money.ts';
import { speakDuration, speakList, speakPrice } from '../shared/speak-time.ts';

type TierOnSale = { name: string; base_seconds: number; bonus_seconds: number; price_cents: number; currency: string };

function packagesOnSale(tiers: ReadonlyArray<TierOnSale>): string {
  return tiers.length === 0
    ? 'No packages are on sale right now, but you can check the MindBot app later.'
    : `You can buy ${speakList(tiers.map((t) =>
      `the ${t.name}, ${speakDuration(t.base_seconds + t.bonus_seconds)} for ${speakPrice(t.price_cents, t.currency)}`))}.`;
}

function graceOffer(graceSeconds: number): string {
  return graceSeconds > 0
    ? ` If you'd like one now, tell me which and I'll put a secure payment link on your screen. I'll stay for ${speakDuration(graceSeconds)}.`
    : '';
}

/** What a caller with no time left hears: kindly, with the packages on sale. */
export function noBalanceText(tiers: ReadonlyArray<TierOnSale>, graceSeconds: number): string {
  return `Hi, I'm MindBot. I'm sorry, you have no talk time left right now. ${packagesOnSale(tiers)}${graceOffer(graceSeconds)}`;
}

/**
 * Why a call was refused at its start, in the terms of the caller's plan (get_usage_current, read after the
 * refusal): a plan suspended for an unpaid invoice, a spending cap reached, else no talk time left. A time
 * card pays in every case (cards are used before the plan, and alone while it is suspended), so the packages
 * are offered each time.
 */
export function refusedText(usage: UsageCurrent | null, tiers: ReadonlyArray<TierOnSale>, graceSeconds: number): string {
  if (usage?.billing === 'postpaid' && usage.status === 'suspended') {
    return "Hi, I'm MindBot. I'm sorry, I can't start our call: calls on your monthly plan are suspended because an " +
      "invoice is unpaid. Once it's paid, with the payment link in the MindBot app, we can talk again; a time card " +
      `works meanwhile. ${packagesOnSale(tiers)}${graceOffer(graceSeconds)}`;
  }
  if (usage?.billing === 'postpaid' && usage.status === 'active' && usage.cap_cents !== null) {
    return `Hi, I'm MindBot. I'm sorry, you've reached your spending cap of ${speakMoney(usage.cap_cents, usage.currency)} ` +
      "for this billing period, so I can't start our call. You can raise the cap in the MindBot app, or use a time card. " +
      `${packagesOnSale(tiers)}${graceOffer(graceSeconds)}`;
  }
  if (usage?.status === 'pending') {
    return "Hi, I'm MindBot. I'm sorry, your monthly plan isn't confirmed yet and you have no talk time left on time " +
      `cards, so I can't start our call. ${packagesOnSale(tiers)}${graceOffer(graceSeconds)}`;
  }
  return noBalanceText(tiers, graceSeconds);
}

/**
 * The spending cap is what ends this call: an active plan pays last (after included minutes and cards), up to
 * the cap, so the end of the call's paid time is the cap. A suspended or pending plan pays nothing: cards end it.
 */
export function capEndsCall(state: SessionState | null): state is SessionState & { plan: NonNullable<SessionState['plan']> } {
  const plan = state?.plan;
  return !!plan && plan.status === 'active' && plan.period_start !== null;
}

export const WARNING_TEXT = (remainingSeconds: number) =>
  `Just so you know, you have about ${speakDuration(Math.max(60, Math.round(remainingSeconds / 60) * 60))} of talk time left.`;
export const CUT_OFF_TEXT = "Your talk time is used up, so I have to end our call here. Thanks for talking with me, and goodbye!";

/** "Just so you know, you are about 5 minutes from your spending cap of 50 dollars for this billing period." */
export const CAP_WARNING_TEXT = (remainingSeconds: number, capCents: number, currency: string) =>
  `Just so you know, you are about ${speakDuration(Math.max(60, Math.round(remainingSeconds / 60) * 60))} from your ` +
  `spending cap of ${speakMoney(capCents, currency)} for this billing period.`;
export const CAP_CUT_OFF_TEXT = (capCents: number, currency: string) =>
  `You've reached your spending cap of ${speakMoney(capCents, currency)} for this billing period, so I have to end our ` +
  'call here. You can raise the cap in the MindBot app. Thanks for talking with me, and goodbye!';

/** The warning for this call's last answer: in the plan's terms when the cap ends the call. */
export function warningText(state: SessionState | null, remainingSeconds: number): string {
  return capEndsCall(state)
    ? CAP_WARNING_TEXT(remainingSeconds, state.plan.cap_cents, state.plan.currency)
    : WARNING_TEXT(remainingSeconds);
}

/** The goodbye at the cut-off: in the plan's terms when the cap ended the call. */
export function cutOffText(state: SessionState): string {
  return capEndsCall(state) ? CAP_CUT_OFF_TEXT(state.plan.cap_cents, state.plan.currency) : CUT_OFF_TEXT;
}
export const STORE_DOWN_TEXT = "I'm sorry, I'm having a technical problem keeping track of your time, so I have to end the call. Please call again in a moment. Goodbye!";
export const GUEST_REFUSED_TEXT = "Hi, I'm MindBot. Calls are for MindBot account holders right now. Create a free account in the app and call me again. Goodbye!";
export const GUEST_OVER_TEXT = "That's all the time I have for guests. Create a free account to keep talking with me. Goodbye!";
export const NO_BALANCE_GOODBYE_TEXT = "I have to go now. Once you've bought time, call me again. Goodbye!";
export const START_FAILED_TEXT = "I'm sorry, I can't start our call right now because of a technical problem. Please try again in a moment. Goodbye!";
/** Short on purpose: the container is killed about ten seconds after SIGTERM. */
export const SHUTDOWN_TEXT = "I'm sorry, I have to end our call now for maintenance. Please call me again in a minute. Goodbye!";
