// What happened on the account: this month's usage, talk time by month, past calls, payments and refunds.
// Each list is its own request with its own loading and error state, so one failing leaves the others.
import { useApi, useAuth } from '../auth.tsx';
import { formatDate, formatDateTime, formatDuration, formatExactMoney, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { usePackageName } from './pricing-context.tsx';
import { usePlan } from './plan-context.tsx';
import { monthLabel, UsageChart } from './UsageChart.tsx';
import { AnalyticsResponse, MonthlyUsageResponse, PaymentsResponse, SessionsResponse, UsageCallsResponse } from '../../shared/api-contracts.ts';

const CHART_MONTHS = 6;


const CALL_STATUS: Record<string, string> = { active: 'In progress', ended: 'Ended', cut_off: 'Cut off (time ran out)', abandoned: 'Dropped' };
const PAYMENT_STATUS: Record<string, string> = {
  pending: 'Pending', succeeded: 'Paid', failed: 'Failed', canceled: 'Cancelled', refunded: 'Refunded',
  partially_refunded: 'Partly refunded', disputed: 'Disputed',
};

/** `refreshKey` changes when a purchase lands or a call ends, so the new payment or call shows up. */
export function HistoryPanel({ refreshKey = 0 }: { refreshKey?: number }) {
  return (
    <Section title="History" id="history">
      <ThisMonth refreshKey={refreshKey} />
      <ByMonth refreshKey={refreshKey} />
      <Calls refreshKey={refreshKey} />
      <Payments refreshKey={refreshKey} />
    </Section>
  );
}

function ThisMonth({ refreshKey }: { refreshKey: number }) {
  const api = useApi();
  const usage = useRequest(() => api.get('/api/usage/current', MonthlyUsageResponse), [refreshKey]);
  return (
    <>
      <h3>This month</h3>
      <Loaded request={usage} label="Loading this month’s usage…">
        {(u) => (
          <div className="stats">
            <div className="stat"><div className="value">{formatDuration(u.total_seconds)}</div><div className="label">Talk time in {monthLabel(u.month, 'long')}</div></div>
            <div className="stat"><div className="value">{u.total_calls}</div><div className="label">{u.total_calls === 1 ? 'Call' : 'Calls'}</div></div>
          </div>
        )}
      </Loaded>
    </>
  );
}

function ByMonth({ refreshKey }: { refreshKey: number }) {
  const api = useApi();
  const { session } = useAuth();
  const userId = session?.userId ?? '';
  const analytics = useRequest(
    () => api.get(`/user/${encodeURIComponent(userId)}/analytics?months=${CHART_MONTHS}`, AnalyticsResponse), [userId, refreshKey]);
  return (
    <>
      <h3>By month</h3>
      <Loaded request={analytics} label="Loading usage by month…">
        {(a) => <UsageChart months={a.monthly_usage} caption="Talk time by month" />}
      </Loaded>
    </>
  );
}

function Calls({ refreshKey }: { refreshKey: number }) {
  const usage = usePlan().usage.data;
  return usage?.billing === 'postpaid'
    ? <PlanCalls refreshKey={refreshKey} currency={usage.currency} />
    : <CardCalls refreshKey={refreshKey} />;
}

/** On a postpaid plan each call has a cost: the exact sum of its charges, to 4 decimals (docs/plans.md). */
function PlanCalls({ refreshKey, currency }: { refreshKey: number; currency: string }) {
  const api = useApi();
  const calls = useRequest(() => api.get('/api/usage/calls?limit=20', UsageCallsResponse), [refreshKey]);
  return (
    <>
      <h3>Calls</h3>
      <Loaded request={calls} label="Loading your calls…">
        {({ calls: list }) => list.length === 0 ? <p className="muted">No calls yet.</p> : (
          <TableScroll label="Your most recent calls">
            <table>
              <caption className="visually-hidden">Your most recent calls</caption>
              <thead><tr><th scope="col">Started</th><th scope="col">Agent</th><th scope="col" className="num">Length</th><th scope="col" className="num">Cost</th><th scope="col">Status</th></tr></thead>
              <tbody>
                {list.map((c) => (
                  <tr key={c.id}>
                    <td>{formatDateTime(c.started_at)}</td>
                    <td>{c.agent_name}{c.call_from && <span className="muted"> · from {c.call_from}</span>}</td>
                    <td className="num">{c.duration_seconds === null ? '—' : formatDuration(c.duration_seconds)}</td>
                    <td className="num">{formatExactMoney(c.cost_cents, currency)}</td>
                    <td>{CALL_STATUS[c.status] ?? c.status}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
    </>
  );
}

function CardCalls({ refreshKey }: { refreshKey: number }) {
  const api = useApi();
  const calls = useRequest(() => api.get('/time/sessions?limit=20', SessionsResponse), [refreshKey]);
  return (
    <>
      <h3>Calls</h3>
      <Loaded request={calls} label="Loading your calls…">
        {({ sessions }) => sessions.length === 0 ? <p className="muted">No calls yet.</p> : (
          <TableScroll label="Your most recent calls">
            <table>
              <caption className="visually-hidden">Your most recent calls</caption>
              <thead><tr><th scope="col">Started</th><th scope="col" className="num">Length</th><th scope="col" className="num">Charged</th><th scope="col">Status</th></tr></thead>
              <tbody>
                {sessions.map((c) => (
                  <tr key={c.session_id}>
                    <td>{formatDateTime(c.started_at)}</td>
                    <td className="num">{c.duration_seconds === null ? '—' : formatDuration(c.duration_seconds)}</td>
                    <td className="num">{c.minutes_charged} min</td>
                    <td>{CALL_STATUS[c.status] ?? c.status}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
    </>
  );
}

function Payments({ refreshKey }: { refreshKey: number }) {
  const packageName = usePackageName();
  const api = useApi();
  const payments = useRequest(() => api.get('/payments?limit=50', PaymentsResponse), [refreshKey]);
  return (
    <>
      <h3>Payments</h3>
      <Loaded request={payments} label="Loading your payments…">
        {({ payments: list }) => list.length === 0 ? <p className="muted">No payments yet.</p> : (
          <TableScroll label="Your payments and refunds">
            <table>
              <caption className="visually-hidden">Your payments and refunds</caption>
              <thead><tr><th scope="col">Date</th><th scope="col">Package</th><th scope="col" className="num">Amount</th><th scope="col">Status</th></tr></thead>
              <tbody>
                {list.map((p) => (
                  <tr key={p.payment_id}>
                    <td>{formatDate(p.created_at)}</td>
                    <td>{packageName(p.package_id) ?? '—'}{p.gift && <span className="muted"> (gift)</span>}</td>
                    <td className="num">{formatMoney(p.amount_cents, p.currency)}</td>
                    <td>{PAYMENT_STATUS[p.status] ?? p.status}
                      {p.refunded_cents > 0 && <>: {formatMoney(p.refunded_cents, p.currency)} back</>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
    </>
  );
}
