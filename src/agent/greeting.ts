// What MindBot says first, chosen by the caller's prepaid balance. Pure: the caller reads the balance.

/** Below this much talk time the greeting warns and suggests buying more (30 minutes). */
export const LOW_BALANCE_GREETING_SECONDS = 30 * 60;

/** Who is calling: a guest (no billing) or a user with this many seconds of talk time left. */
export type GreetingCaller = { kind: 'guest' } | { kind: 'user'; totalSeconds: number };

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

export function greetingText(caller: GreetingCaller): string {
  if (caller.kind === 'guest') {
    return "Hi! I'm MindBot. You're talking as a guest, so your conversation time isn't tracked. " +
      `Create a free account to buy talk time and keep track of it. ${HELP}`;
  }
  const seconds = Math.max(0, Math.floor(caller.totalSeconds));
  if (seconds === 0) {
    return `Hi! You have no talk time left. Consider purchasing more time cards: ask me what the packages cost. ${HELP}`;
  }
  if (seconds < LOW_BALANCE_GREETING_SECONDS) {
    return `Hi! You have ${aboutMinutes(seconds)} left. Consider purchasing more time cards so we can keep talking. ${HELP}`;
  }
  return `Welcome back! You have ${hours(seconds)} of conversation time remaining. ${HELP}`;
}
