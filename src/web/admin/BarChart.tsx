// A small bar chart drawn as inline SVG (no chart library, nothing injected into <style>). The picture is
// for sighted readers; the same figures are in a table behind a disclosure, which screen readers and
// keyboard users can open. Every value comes from the caller as the API answered it: this only draws.
import { useId } from 'react';
import { TableScroll } from '../ui.tsx';

export interface BarDatum {
  label: string;
  value: number;
}

const WIDTH = 600;
const HEIGHT = 180;
const TOP = 4;
const BOTTOM = 1;

export function BarChart({ title, data, formatValue, valueHeading }: {
  title: string;
  data: BarDatum[];
  formatValue: (value: number) => string;
  /** The table's column heading for the values, e.g. "Revenue". */
  valueHeading: string;
}) {
  const id = useId();
  if (data.length === 0) return <p className="muted">{title}: no days in this period.</p>;
  const highest = data.reduce((best, d) => (d.value > best.value ? d : best), data[0]!);
  const scale = highest.value > 0 ? (HEIGHT - TOP - BOTTOM) / highest.value : 0;
  const slot = WIDTH / data.length;
  const gap = Math.min(4, slot * 0.2);
  const first = data[0]!;
  const last = data[data.length - 1]!;
  const summary = highest.value > 0
    ? `${data.length} days from ${first.label} to ${last.label}; the highest is ${formatValue(highest.value)} on ${highest.label}.`
    : `${data.length} days from ${first.label} to ${last.label}; nothing in this period.`;

  return (
    <figure className="bar-chart" aria-labelledby={`${id}-caption`}>
      <figcaption id={`${id}-caption`}>{title}</figcaption>
      <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={`${id}-caption ${id}-desc`}>
        <desc id={`${id}-desc`}>{summary}</desc>
        <line className="axis" x1={0} x2={WIDTH} y1={HEIGHT - BOTTOM} y2={HEIGHT - BOTTOM} />
        {data.map((d, i) => {
          const height = d.value * scale;
          return (
            <rect key={d.label} className="bar" x={i * slot + gap / 2} width={Math.max(slot - gap, 1)}
              y={HEIGHT - BOTTOM - height} height={height}>
              <title>{`${d.label}: ${formatValue(d.value)}`}</title>
            </rect>
          );
        })}
      </svg>
      {/* Labels in HTML, not SVG text: they keep a readable size however wide the chart is drawn. */}
      <div className="chart-labels" aria-hidden="true">
        <span>{first.label}</span>
        <span>{highest.value > 0 ? `highest ${formatValue(highest.value)}` : 'nothing in this period'}</span>
        <span>{last.label}</span>
      </div>
      <details>
        <summary>{title} as a table</summary>
        <TableScroll label={`${title} as a table`}>
          <table>
            <caption className="visually-hidden">{title}</caption>
            <thead><tr><th scope="col">Day</th><th scope="col" className="num">{valueHeading}</th></tr></thead>
            <tbody>
              {data.map((d) => (
                <tr key={d.label}><th scope="row">{d.label}</th><td className="num">{formatValue(d.value)}</td></tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      </details>
    </figure>
  );
}
