// Who is on which postpaid plan (GET /admin/plans/subscribers): counts by plan version and status, then each
// subscriber with their period and spending cap.
import { useApi } from '../auth.tsx';
import { formatDate, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { PlanSubscribers } from '../../shared/admin-contracts.ts';
import { KIND_NAMES } from './plan-format.ts';

const STATUS = { pending: 'Waiting for Stripe', active: 'Active', suspended: 'Suspended' } as const;

export function SubscribersPanel({ version }: { version: number }) {
  const api = useApi();
  const request = useRequest(() => api.get('/admin/plans/subscribers?limit=100', PlanSubscribers), [version]);
  return (
    <Section title="Subscribers" id="subscribers"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh subscribers</button>}>
      <Loaded request={request} label="Loading subscribers…">
        {(list) => list.total === 0 ? <p className="muted">Nobody is on a postpaid plan yet.</p> : (
          <>
            <TableScroll label="Subscribers by plan">
              <table className="compact" aria-label="Subscribers by plan">
                <thead>
                  <tr><th scope="col">Plan</th><th scope="col">Kind</th><th scope="col" className="num">Active</th>
                    <th scope="col" className="num">Suspended</th><th scope="col" className="num">Waiting for Stripe</th></tr>
                </thead>
                <tbody>
                  {list.by_plan.map((g) => (
                    <tr key={`${g.plan_key}:${g.plan_version}`}>
                      <th scope="row">{g.plan_key} v{g.plan_version} <span className="muted">({g.currency.toUpperCase()})</span></th>
                      <td>{KIND_NAMES[g.kind]}</td>
                      <td className="num">{g.active}</td><td className="num">{g.suspended}</td><td className="num">{g.pending}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
            <p className="muted">{list.subscribers.length < list.total
              ? `The first ${list.subscribers.length} of ${list.total} subscribers, the newest first.` : `${list.total} subscriber(s), the newest first.`}</p>
            <TableScroll label="Subscribers">
              <table className="compact" aria-label="Subscribers">
                <thead>
                  <tr><th scope="col">User</th><th scope="col">Plan</th><th scope="col">Status</th><th scope="col">Period</th>
                    <th scope="col" className="num">Spending cap</th><th scope="col">Next</th></tr>
                </thead>
                <tbody>
                  {list.subscribers.map((s) => (
                    <tr key={s.user_plan_id}>
                      <th scope="row" className="user-id">{s.user_id}</th>
                      <td>{s.plan_name} <span className="muted code-small">{s.plan_key} v{s.plan_version}</span></td>
                      <td>{STATUS[s.status]}</td>
                      <td>{s.current_period_start ? `${formatDate(s.current_period_start)} – ${formatDate(s.current_period_end)}` : '—'}</td>
                      <td className="num">{formatMoney(s.spending_cap_cents, list.by_plan.find((g) => g.plan_key === s.plan_key
                        && g.plan_version === s.plan_version)?.currency ?? 'usd')}</td>
                      <td>{s.cancel_at_period_end ? 'Cancels at period end' : s.scheduled_plan_key ? `Moves to ${s.scheduled_plan_key}` : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          </>
        )}
      </Loaded>
    </Section>
  );
}
