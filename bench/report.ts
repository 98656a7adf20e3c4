// Plain-text aligned report.

type Row = { kind: 'section'; title: string } | { kind: 'row'; cells: [string, string, string, string] };

export class Report {
  private readonly rows: Row[] = [];

  section(title: string): this {
    this.rows.push({ kind: 'section', title });
    return this;
  }

  row(label: string, value: number | string, unit = '', note = ''): this {
    this.rows.push({ kind: 'row', cells: [label, formatValue(value), unit, note] });
    return this;
  }

  render(): string {
    const cells = this.rows.flatMap((r) => (r.kind === 'row' ? [r.cells] : []));
    const width = (i: number) => Math.max(0, ...cells.map((c) => c[i]!.length));
    const [w0, w1, w2] = [width(0), width(1), width(2)];
    const total = w0 + w1 + w2 + 6 + Math.min(60, width(3));
    const lines: string[] = [];
    for (const r of this.rows) {
      if (r.kind === 'section') {
        lines.push('', `== ${r.title} `.padEnd(total, '='));
      } else {
        const [label, value, unit, note] = r.cells;
        lines.push(`  ${label.padEnd(w0)}  ${value.padStart(w1)} ${unit.padEnd(w2)}  ${note}`.trimEnd());
      }
    }
    return lines.join('\n').replace(/^\n/, '');
  }
}

export function formatValue(value: number | string): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const mark = (pass: boolean): string => (pass ? 'PASS' : 'FAIL');
