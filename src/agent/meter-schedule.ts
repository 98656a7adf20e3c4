// Pure arithmetic behind the call controller: when to meter, when to warn, how long to back off.
// Every instant is in epoch milliseconds; every answer derives from the store's last SessionState.

/** What the controller needs from the store's last answer. */
export interface CoverageFacts {
  /** The call is paid up to this instant. */
  coveredUntilMs: number;
  /** The user's balance left, shared with their other calls. */
  remainingSeconds: number;
}

/** Time left for this call: what is paid for it and not yet used, plus the balance not yet charged. */
export function remainingMs(facts: CoverageFacts, nowMs: number): number {
  return Math.max(0, facts.coveredUntilMs - nowMs) + Math.max(0, facts.remainingSeconds) * 1000;
}

/** The balance is gone: nothing more can be charged, so the call must end at covered_until. */
export function isExhausted(facts: CoverageFacts): boolean {
  return facts.remainingSeconds <= 0;
}

/**
 * When to ask the store next. Normally just after the paid time runs out (covered_until, an increment
 * boundary, plus the lead), so that the next increment has begun and is charged. With the balance gone, at
 * covered_until itself: a last meter there either finds a top-up or ends the call, never a second late.
 */
export function nextMeterAt(facts: CoverageFacts, nowMs: number, leadMs: number): number {
  if (isExhausted(facts)) return Math.max(facts.coveredUntilMs, nowMs);
  return Math.max(facts.coveredUntilMs, nowMs) + leadMs;
}

/**
 * The thresholds (in seconds) that the remaining time has reached and that have not been warned of yet,
 * largest first.
 */
export function crossedThresholds(thresholds: readonly number[], warned: ReadonlySet<number>, remaining: number): number[] {
  return thresholds.filter((t) => !warned.has(t) && remaining <= t * 1000).sort((a, b) => b - a);
}

/** When the next unwarned threshold will be reached if nothing else drains the balance, or null. */
export function nextWarningAt(
  thresholds: readonly number[],
  warned: ReadonlySet<number>,
  facts: CoverageFacts,
  nowMs: number,
): number | null {
  const left = remainingMs(facts, nowMs);
  const pending = thresholds.filter((t) => !warned.has(t) && left > t * 1000);
  if (pending.length === 0) return null;
  const largest = Math.max(...pending);
  return nowMs + left - largest * 1000;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

/** The delay before retry number `attempt` (1-based): initial, initial·factor, … capped at maxMs. */
export function backoffMs(options: BackoffOptions, attempt: number): number {
  const delay = options.initialMs * Math.pow(options.factor, Math.max(0, attempt - 1));
  return Math.min(options.maxMs, delay);
}
