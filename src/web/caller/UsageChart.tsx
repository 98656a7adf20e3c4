// Talk time per month as inline SVG bars (no chart library, nothing injected into the page's styles). The
// drawing is for the eye; a visually hidden table carries the same figures for screen readers.
import { formatDuration } from '../format.ts';

export interface MonthUsage {
  month: string;
  calls: number;
  seconds: number;
}

const WIDTH = 600;
const HEIGHT = 180;
const AXIS = 28;

/** "2026-03" → "Mar 2026", read in UTC like the server's months. */
export function monthLabel(month: string, style: 'short' | 'long' = 'short'): string {
  const [year, mon] = month.split('-').map(Number);
  return new Date(Date.UTC(year ?? 1970, (mon ?? 1) - 1, 1)).toLocaleDateString(undefined,
    { month: style, year: style === 'long' ? 'numeric' : '2-digit', timeZone: 'UTC' });
}

export function UsageChart({ months, caption }: { months: MonthUsage[]; caption: string }) {
  if (months.every((m) => m.seconds === 0)) {
    return <p className="muted">No calls in the last {months.length} months.</p>;
  }
  const most = Math.max(1, ...months.map((m) => m.seconds));
  const slot = WIDTH / Math.max(1, months.length);
  const barWidth = Math.min(60, slot * 0.6);
  return (
    <figure className="usage-chart">
      <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT + AXIS}`} aria-hidden="true" focusable="false">
        <line x1={0} x2={WIDTH} y1={HEIGHT} y2={HEIGHT} className="axis" />
        {months.map((m, i) => {
          // A month with any talk keeps a sliver of a bar, so it never reads as none.
          const height = m.seconds > 0 ? Math.max(2, Math.round((m.seconds / most) * (HEIGHT - 28))) : 0;
          const x = i * slot + (slot - barWidth) / 2;
          return (
            <g key={m.month}>
              <title>{`${monthLabel(m.month, 'long')}: ${formatDuration(m.seconds)} in ${m.calls} ${m.calls === 1 ? 'call' : 'calls'}`}</title>
              <rect className="bar" x={x} y={HEIGHT - height} width={barWidth} height={height} rx={3} />
              {m.seconds > 0 && <text x={i * slot + slot / 2} y={HEIGHT - height - 6} textAnchor="middle">{formatDuration(m.seconds)}</text>}
              <text x={i * slot + slot / 2} y={HEIGHT + 22} textAnchor="middle">{monthLabel(m.month)}</text>
            </g>
          );
        })}
      </svg>
      <table className="visually-hidden">
        <caption>{caption}</caption>
        <thead><tr><th scope="col">Month</th><th scope="col">Talk time</th><th scope="col">Calls</th></tr></thead>
        <tbody>
          {months.map((m) => (
            <tr key={m.month}><th scope="row">{monthLabel(m.month, 'long')}</th><td>{formatDuration(m.seconds)}</td><td>{m.calls}</td></tr>
          ))}
        </tbody>
      </table>
      <figcaption className="muted">{caption}, last {months.length} months</figcaption>
    </figure>
  );
}
