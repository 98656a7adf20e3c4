// How times and money read on screen. Display only: every figure comes from the server as it is.

/** 3725 → "1 h 2 min"; under a minute → "45 s"; nothing → "0 min". Rounded down: never more time than there is. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s === 0) return '0 min';
  if (s < 60) return `${s} s`;
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours === 0) return `${minutes} min`;
  return minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`;
}

/** A countdown: 125 → "2:05", 3725 → "1:02:05". */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

export function formatMoney(cents: number, currency = 'usd'): string {
  return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() }).format(cents / 100);
}

/**
 * Exact cents (a call's or an invoice line's unrounded amount) in major units to 4 decimals, as docs/plans.md
 * shows them: 33.3333 → "$0.3333". Never what is charged: the server rounds each line once.
 */
export function formatExactMoney(cents: number, currency = 'usd'): string {
  return new Intl.NumberFormat(undefined, {
    style: 'currency', currency: currency.toUpperCase(), minimumFractionDigits: 4, maximumFractionDigits: 4,
  }).format(cents / 100);
}

/** A price per hour that may carry fractions of a cent (a rate of 0.06 c/s is 360 c/h; 3.3 c/min is 198 c/h). */
export function formatPerHour(cents: number, currency = 'usd'): string {
  return `${formatMoney(Math.round(cents), currency)} per hour`;
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
