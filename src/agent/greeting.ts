// What MindBot says first, chosen by the caller's prepaid balance. Pure: the caller reads the balance.

import type { SessionState } from '../billing/store.ts';
import { speakMoney } from '../tools/speak-money.ts';

/** Below this much talk time the greeting warns and suggests buying more (30 minutes). */
export const LOW_BALANCE_GREETING_SECONDS = 30 * 60;

/**
 * Who is calling: a guest (no billing) or a user with this many seconds of talk time left. When part of that
 * balance expires before this call can use it, `expiring` says how much and in how long, and `usableSeconds`
 * is how long the call can really last: the greeting promises that, never the hours that expire.
 */
export type GreetingCaller =
  | { kind: 'guest' }
  | { kind: 'user'; totalSeconds: number; usableSeconds?: number; expiring?: { seconds: number; inSeconds: number } }
  | PlanCaller;

/**
 * A caller whose active monthly plan pays for the call (migrations/017): how long the call can last before the
 * spending cap ends it, and the period's usage against the cap, in the plan's currency.
 */
export interface PlanCaller {
  kind: 'plan';
  /** null when no call is billed (the text console): the period and the cap only. */
  seconds: number | null;
  usageCents: number;
  capCents: number;
  currency: string;
}

/**
 * The caller as the start of their call found them (the start answer's covered_until, balance and
 * payable_until: the SQL walks the cards, the first to expire first).
 */
export function greetingCallerOf(state: SessionState, now: Date): GreetingCaller {
  const ahead = (instant: Date) => Math.max(0, (instant.getTime() - now.getTime()) / 1000);
  const plan = state.plan;
  if (plan && plan.status === 'active' && plan.period_start !== null) {
    // The plan pays last (after included minutes and cards), so payable_until is where the cap ends the call.
    return { kind: 'plan', seconds: ahead(state.payable_until), usageCents: plan.period_usage_cents,
      capCents: plan.cap_cents, currency: plan.currency };
  }
  const totalSeconds = ahead(state.covered_until) + state.remaining_seconds;
  if (state.expiring_unused_seconds <= 0) return { kind: 'user', totalSeconds };
  return {
    kind: 'user',
    totalSeconds,
    usableSeconds: ahead(state.payable_until),
    expiring: {
      seconds: state.expiring_unused_seconds,
      inSeconds: state.expiring_unused_until ? ahead(state.expiring_unused_until) : 0,
    },
  };
}

const HELP = 'How can I help you today?';

/** "about 12 minutes", "less than a minute" (rounded down: never promise more time than is left). */
function aboutMinutes(seconds: number): string {
  if (seconds < 60) return 'less than a minute';
  const minutes = Math.floor(seconds / 60);
  return minutes === 1 ? 'about 1 minute' : `about ${minutes} minutes`;
}

/** "5.5 hours", "1 hour", "0.5 hours" (to a tenth of an hour, rounded down). */
function hours(seconds: number): string {
  const tenths = Math.floor(seconds / 360) / 10;
  const text = Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1);
  return tenths === 1 ? '1 hour' : `${text} hours`;
}

/** "1 hour 57 minutes", "3 minutes", "2 hours", "less than a minute" (rounded down). */
function duration(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  if (minutes === 0) return 'less than a minute';
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  const parts = [];
  if (h > 0) parts.push(h === 1 ? '1 hour' : `${h} hours`);
  if (m > 0) parts.push(m === 1 ? '1 minute' : `${m} minutes`);
  return parts.join(' ');
}

/** How long the call can last: minutes under half an hour, else hours to a tenth (rounded down). */
function callLength(seconds: number): string {
  return seconds < LOW_BALANCE_GREETING_SECONDS ? aboutMinutes(seconds) : `about ${hours(seconds)}`;
}

export function greetingText(caller: GreetingCaller): string {
  if (caller.kind === 'guest') {
    return "Hi! I'm MindBot. You're talking as a guest, so your conversation time isn't tracked. " +
      `Create a free account to buy talk time and keep track of it. ${HELP}`;
  }
  if (caller.kind === 'plan') return planGreeting(caller);
  const seconds = Math.max(0, Math.floor(caller.totalSeconds));
  if (caller.expiring && caller.expiring.seconds > 0 && seconds > 0) {
    const usable = Math.max(0, Math.floor(caller.usableSeconds ?? seconds - caller.expiring.seconds));
    const expires = caller.expiring.inSeconds < 60 ? 'expires in less than a minute' : `expires in ${duration(caller.expiring.inSeconds)}`;
    const low = usable < LOW_BALANCE_GREETING_SECONDS;
    return `${low ? 'Hi!' : 'Welcome back!'} You have ${duration(seconds)} of conversation time, but ` +
      `${duration(caller.expiring.seconds)} of it ${expires}, before this call can use it, so this call can last ` +
      `${callLength(usable)}.${low ? ' Consider purchasing more time cards so we can keep talking.' : ''} ${HELP}`;
  }
  if (seconds === 0) {
    return `Hi! You have no talk time left. Consider purchasing more time cards: ask me what the packages cost. ${HELP}`;
  }
  if (seconds < LOW_BALANCE_GREETING_SECONDS) {
    return `Hi! You have ${aboutMinutes(seconds)} left. Consider purchasing more time cards so we can keep talking. ${HELP}`;
  }
  return `Welcome back! You have ${hours(seconds)} of conversation time remaining. ${HELP}`;
}

/** In the plan's terms: the cap, what the period has used of it, and how long this call can last before it. */
function planGreeting(caller: PlanCaller): string {
  const cap = speakMoney(caller.capCents, caller.currency);
  const used = `This billing period you've used ${speakMoney(caller.usageCents, caller.currency)} of your ${cap} spending cap`;
  if (caller.seconds === null) return `Welcome back! ${used}. ${HELP}`;
  const seconds = Math.max(0, Math.floor(caller.seconds));
  if (seconds < LOW_BALANCE_GREETING_SECONDS) {
    return `Hi! You are ${aboutMinutes(seconds)} from your spending cap of ${cap} for this billing period. ` +
      `You can raise it in the MindBot app. ${HELP}`;
  }
  return `Welcome back! ${used}, enough for ${callLength(seconds)} more of talking. ${HELP}`;
}
