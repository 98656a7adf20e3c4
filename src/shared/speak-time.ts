// Pure wording for the voice: durations, dates and prices as a text-to-speech voice can say them.
// No I/O, no clock of its own (the caller passes `now`), so every rule is table-tested.

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function hoursAndMinutes(hours: number, minutes: number): string {
  if (hours === 0) return plural(minutes, 'minute');
  if (minutes === 0) return plural(hours, 'hour');
  return `${plural(hours, 'hour')} and ${plural(minutes, 'minute')}`;
}

/**
 * A duration in words, never overstating it (time left must not sound like more than it is):
 * 0 → "no time", 1-59 s → "less than a minute", whole minutes below 10 hours ("2 hours and 5 minutes",
 * "about …" when seconds were dropped), whole hours from 10 hours on ("12 hours", "over 12 hours").
 */
export function speakDuration(seconds: number): string {
  const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
  if (total === 0) return 'no time';
  if (total < 60) return 'less than a minute';
  if (total >= 10 * 3600) {
    const hours = Math.floor(total / 3600);
    return total % 3600 === 0 ? plural(hours, 'hour') : `over ${plural(hours, 'hour')}`;
  }
  const minutesTotal = Math.floor(total / 60);
  const words = hoursAndMinutes(Math.floor(minutesTotal / 60), minutesTotal % 60);
  return total % 60 === 0 ? words : `about ${words}`;
}

/** Whole minutes as a count that is charged or used: 0 → "0 minutes", 61 s → "2 minutes" (begun minutes). */
export function speakMinutesCharged(seconds: number): string {
  const minutes = Math.ceil(Math.max(0, seconds) / 60);
  const hours = Math.floor(minutes / 60);
  if (minutes === 0) return '0 minutes';
  return hoursAndMinutes(hours, minutes % 60);
}

const DAY_MS = 86_400_000;

function dayNumber(date: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' })
    .formatToParts(date);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return Math.round(Date.UTC(get('year'), get('month') - 1, get('day')) / DAY_MS);
}

/**
 * When something happens, relative to now, in the listener's time zone (UTC unless told):
 * "today", "tomorrow", "in 3 days, on Friday, January 9" (within a week), "on March 5" (this year),
 * "on March 5, 2027" (another year), "already" (in the past).
 */
export function speakWhen(at: Date, now: Date, timeZone = 'UTC'): string {
  if (at.getTime() <= now.getTime()) return 'already';
  const days = dayNumber(at, timeZone) - dayNumber(now, timeZone);
  if (days === 0) return 'today';
  if (days === 1) return 'tomorrow';
  const sameYear = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric' }).format(at)
    === new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric' }).format(now);
  if (days < 7) {
    const day = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'long', month: 'long', day: 'numeric' }).format(at);
    return `in ${days} days, on ${day}`;
  }
  const date = new Intl.DateTimeFormat('en-US', {
    timeZone, month: 'long', day: 'numeric', ...(sameYear ? {} : { year: 'numeric' }),
  }).format(at);
  return `on ${date}`;
}

const CURRENCY_WORDS: Record<string, [one: string, many: string, centOne: string, centMany: string]> = {
  usd: ['dollar', 'dollars', 'cent', 'cents'],
  cad: ['Canadian dollar', 'Canadian dollars', 'cent', 'cents'],
  aud: ['Australian dollar', 'Australian dollars', 'cent', 'cents'],
  eur: ['euro', 'euros', 'cent', 'cents'],
  gbp: ['pound', 'pounds', 'penny', 'pence'],
};

/** A price a voice can say: 999 usd → "9 dollars and 99 cents", 1000 eur → "10 euros", 5 → "5 cents". */
export function speakPrice(cents: number, currency: string): string {
  const words = CURRENCY_WORDS[currency.toLowerCase()];
  if (!words) return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
  const [one, many, centOne, centMany] = words;
  const whole = Math.floor(cents / 100);
  const rest = cents % 100;
  const main = whole > 0 ? plural(whole, one, many) : '';
  const small = rest > 0 ? plural(rest, centOne, centMany) : '';
  if (main && small) return `${main} and ${small}`;
  return main || small || `0 ${many}`;
}

/** "a", "a and b", "a, b and c". */
export function speakList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
