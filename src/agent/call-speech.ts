// What MindBot says at the turns of a call that the billing decides (no time left, warnings, cut-off, outage,
// guests, shutdown). Plain sentences for TTS; the durations and prices are spoken, never written as digits.
import { speakDuration, speakList, speakPrice } from '../shared/speak-time.ts';

/** What a caller with no time left hears: kindly, with the packages on sale. */
export function noBalanceText(tiers: ReadonlyArray<{ name: string; base_seconds: number; bonus_seconds: number; price_cents: number; currency: string }>, graceSeconds: number): string {
  const packages = tiers.length === 0
    ? 'No packages are on sale right now, but you can check the MindBot app later.'
    : `You can buy ${speakList(tiers.map((t) =>
      `the ${t.name}, ${speakDuration(t.base_seconds + t.bonus_seconds)} for ${speakPrice(t.price_cents, t.currency)}`))}.`;
  const grace = graceSeconds > 0
    ? ` If you'd like one now, tell me which and I'll put a secure payment link on your screen. I'll stay for ${speakDuration(graceSeconds)}.`
    : '';
  return `Hi, I'm MindBot. I'm sorry, you have no talk time left right now. ${packages}${grace}`;
}

export const WARNING_TEXT = (remainingSeconds: number) =>
  `Just so you know, you have about ${speakDuration(Math.max(60, Math.round(remainingSeconds / 60) * 60))} of talk time left.`;
export const CUT_OFF_TEXT = "Your talk time is used up, so I have to end our call here. Thanks for talking with me, and goodbye!";
export const STORE_DOWN_TEXT = "I'm sorry, I'm having a technical problem keeping track of your time, so I have to end the call. Please call again in a moment. Goodbye!";
export const GUEST_REFUSED_TEXT = "Hi, I'm MindBot. Calls are for MindBot account holders right now. Create a free account in the app and call me again. Goodbye!";
export const GUEST_OVER_TEXT = "That's all the time I have for guests. Create a free account to keep talking with me. Goodbye!";
export const NO_BALANCE_GOODBYE_TEXT = "I have to go now. Once you've bought time, call me again. Goodbye!";
export const START_FAILED_TEXT = "I'm sorry, I can't start our call right now because of a technical problem. Please try again in a moment. Goodbye!";
/** Short on purpose: the container is killed about ten seconds after SIGTERM. */
export const SHUTDOWN_TEXT = "I'm sorry, I have to end our call now for maintenance. Please call me again in a minute. Goodbye!";
