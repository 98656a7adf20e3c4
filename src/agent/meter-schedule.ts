// Pure arithmetic behind the call controller: when to meter, when to warn, how long to back off.
// Every instant is in epoch milliseconds; every answer derives from the store's last SessionState.

/** What the controller needs from the store's last answer. */
export interface CoverageFacts {
  /** The call is paid up to this instant. */
  coveredUntilMs: number;
  /**
   * The balance can pay for the call up to this instant (payable_until): covered_until plus what the cards can
   * still be charged for before each of them expires. Never before covered_until.
   */
  payableUntilMs: number;
}

/**
 * Talk time left for this call: up to the moment it will really be cut off. A card that expires before its
 * seconds can be charged does not count, so the warnings and the caller's countdown never promise them.
 */
export function remainingMs(facts: CoverageFacts, nowMs: number): number {
  return Math.max(0, Math.max(facts.payableUntilMs, facts.coveredUntilMs) - nowMs);
}

/** Nothing more can be charged after covered_until (no balance, or none valid then): the call ends there. */
export function isExhausted(facts: CoverageFacts): boolean {
  return facts.payableUntilMs <= facts.coveredUntilMs;
}

/**
 * When to ask the store next. Normally just after the paid time runs out (covered_until, an increment
 * boundary, plus the lead), so that the next increment has begun and is charged. With nothing more payable,
 * at covered_until itself: a last meter there either finds a top-up or ends the call, never a second late.
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
