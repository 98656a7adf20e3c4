// A row of labelled figures. A description list, so each figure is read with its label.
import type { ReactNode } from 'react';

export function Stats({ items }: { items: Array<{ label: string; value: ReactNode }> }) {
  return (
    <dl className="stats">
      {items.map(({ label, value }) => (
        <div className="stat" key={label}>
          <dt className="label">{label}</dt>
          <dd className="value">{value}</dd>
        </div>
      ))}
    </dl>
  );
}
