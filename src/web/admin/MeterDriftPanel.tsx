// Meter drift (GET /admin/meter-drift): periods where the seconds we billed and the seconds Stripe's meter
// summed differ, as the reconciliation job found them. Open rows by default; resolved ones on request.
import { useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDate, formatDateTime } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { MeterDriftList } from '../../shared/admin-contracts.ts';

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0, signDisplay: 'exceptZero' });
const plain = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function MeterDriftPanel({ version }: { version: number }) {
  const api = useApi();
  const [resolved, setResolved] = useState(false);
  const request = useRequest(() => api.get(`/admin/meter-drift?include_resolved=${resolved}&limit=100`, MeterDriftList), [resolved, version]);
  return (
    <Section title="Meter drift" id="meter-drift"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh drift</button>}>
      <label className="checkbox">
        <input type="checkbox" checked={resolved} onChange={(e) => setResolved(e.target.checked)} /> Show resolved rows too
      </label>
      <Loaded request={request} label="Loading meter drift…">
        {(list) => (
          <>
            <p role="status" className={list.unresolved === 0 ? 'success' : 'error'}>
              {list.unresolved === 0 ? 'Stripe’s meter agrees with our seconds.'
                : `${list.unresolved} period(s) where Stripe’s meter and our seconds differ.`}
            </p>
            {list.drift.length > 0 && (
              <TableScroll label="Meter drift">
                <table className="compact" aria-label="Meter drift">
                  <thead>
                    <tr><th scope="col">User</th><th scope="col">Plan</th><th scope="col">Period</th><th scope="col" className="num">Our seconds</th>
                      <th scope="col" className="num">Stripe’s seconds</th><th scope="col" className="num">Difference</th><th scope="col">Checked</th>
                      <th scope="col">Resolved</th></tr>
                  </thead>
                  <tbody>
                    {list.drift.map((d) => (
                      <tr key={d.id}>
                        <th scope="row" className="user-id">{d.user_id}</th>
                        <td>{d.plan_key} v{d.plan_version}</td>
                        <td>{formatDate(d.period_start)} – {formatDate(d.period_end)}</td>
                        <td className="num">{plain.format(d.our_seconds)}</td>
                        <td className="num">{plain.format(d.stripe_seconds)}</td>
                        <td className="num">{whole.format(d.difference_seconds)}</td>
                        <td>{formatDateTime(d.checked_at)}</td>
                        <td>{d.resolved_at ? formatDateTime(d.resolved_at) : 'Open'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
          </>
        )}
      </Loaded>
    </Section>
  );
}
