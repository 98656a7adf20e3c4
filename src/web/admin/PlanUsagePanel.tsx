// Postpaid money and usage: MRR (GET /admin/mrr), usage by plan (GET /admin/usage/by-plan) and by agent (GET
// /admin/usage/by-agent), over the report period. Every amount is in its own currency: a row per currency, and
// an agent's plan money listed per currency, never added across currencies.
import { useApi } from '../auth.tsx';
import { formatDuration, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { Mrr, UsageByAgent, UsageByPlan } from '../../shared/admin-contracts.ts';
import { KIND_NAMES } from './plan-format.ts';

/** Exact cents (up to 4 decimals of a cent) in the currency: what a line sums before its one rounding. */
const exact = (cents: number, currency: string) => new Intl.NumberFormat(undefined, {
  style: 'currency', currency: currency.toUpperCase(), minimumFractionDigits: 2, maximumFractionDigits: 6,
}).format(cents / 100);

export function PlanUsagePanel({ days, version }: { days: number; version: number }) {
  const api = useApi();
  const mrr = useRequest(() => api.get('/admin/mrr', Mrr), [version]);
  const byPlan = useRequest(() => api.get(`/admin/usage/by-plan?days=${days}`, UsageByPlan), [days, version]);
  const byAgent = useRequest(() => api.get(`/admin/usage/by-agent?days=${days}`, UsageByAgent), [days, version]);
  const reload = () => { void mrr.reload(); void byPlan.reload(); void byAgent.reload(); };
  return (
    <Section title="MRR, by plan and by agent" id="plan-usage"
      actions={<button type="button" className="secondary" onClick={reload}>Refresh plan figures</button>}>
      <h3 id="mrr-title">Monthly recurring revenue, per currency</h3>
      <Loaded request={mrr} label="Loading MRR…">
        {(report) => report.currencies.length === 0 ? <p className="muted">No subscription or postpaid usage yet.</p> : (
          <TableScroll labelledBy="mrr-title">
            <table className="compact" aria-labelledby="mrr-title">
              <thead>
                <tr><th scope="col">Currency</th><th scope="col" className="num">Subscriptions</th><th scope="col" className="num">Monthly fees</th>
                  <th scope="col" className="num">Usage users</th><th scope="col" className="num">Usage, last period</th><th scope="col" className="num">MRR</th></tr>
              </thead>
              <tbody>
                {report.currencies.map((c) => (
                  <tr key={c.currency}>
                    <th scope="row">{c.currency.toUpperCase()}</th>
                    <td className="num">{c.subscriptions}</td>
                    <td className="num">{formatMoney(c.subscription_fees_cents, c.currency)}</td>
                    <td className="num">{c.usage_users}</td>
                    <td className="num">{formatMoney(c.usage_last_period_cents, c.currency)}</td>
                    <td className="num">{formatMoney(c.mrr_cents, c.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
      <h3 id="usage-by-plan-title">Usage by plan, the last {days} days</h3>
      <Loaded request={byPlan} label="Loading usage by plan…">
        {(report) => (
          <>
            {report.plans.length === 0 ? <p className="muted">No postpaid calls in the period.</p> : (
              <TableScroll labelledBy="usage-by-plan-title">
                <table className="compact" aria-labelledby="usage-by-plan-title">
                  <thead>
                    <tr><th scope="col">Plan</th><th scope="col">Kind</th><th scope="col" className="num">Users</th><th scope="col" className="num">Calls</th>
                      <th scope="col" className="num">Included time</th><th scope="col" className="num">Rated time</th><th scope="col" className="num">Usage</th></tr>
                  </thead>
                  <tbody>
                    {report.plans.map((p) => (
                      <tr key={`${p.plan_key}:${p.plan_version}:${p.currency}`}>
                        <th scope="row">{p.plan_key} v{p.plan_version}</th>
                        <td>{KIND_NAMES[p.kind]}</td>
                        <td className="num">{p.users}</td><td className="num">{p.calls}</td>
                        <td className="num">{formatDuration(p.included_seconds)}</td>
                        <td className="num">{formatDuration(p.rated_seconds)}</td>
                        <td className="num">{formatMoney(p.amount_cents, p.currency)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
            <p className="muted">Prepaid cards: {report.prepaid.calls} call(s) by {report.prepaid.users} user(s),
              {' '}{formatDuration(report.prepaid.card_seconds)} from cards.</p>
          </>
        )}
      </Loaded>
      <h3 id="usage-by-agent-title">Usage by agent, the last {days} days</h3>
      <Loaded request={byAgent} label="Loading usage by agent…">
        {(report) => report.agents.length === 0 ? <p className="muted">No calls in the period.</p> : (
          <TableScroll labelledBy="usage-by-agent-title">
            <table className="compact" aria-labelledby="usage-by-agent-title">
              <thead>
                <tr><th scope="col">Agent</th><th scope="col" className="num">Calls</th><th scope="col" className="num">Users</th>
                  <th scope="col" className="num">Talk time</th><th scope="col" className="num">Rated time</th><th scope="col" className="num">Plan usage</th></tr>
              </thead>
              <tbody>
                {report.agents.map((a) => (
                  <tr key={a.agent_name}>
                    <th scope="row">{a.agent_name}</th>
                    <td className="num">{a.calls}</td><td className="num">{a.users}</td>
                    <td className="num">{formatDuration(a.seconds)}</td>
                    <td className="num">{formatDuration(a.rated_seconds)}</td>
                    <td className="num">{a.plan_amounts.length === 0 ? '—' : (
                      <ul className="plain">{a.plan_amounts.map((m) => <li key={m.currency}>{exact(m.amount_exact_cents, m.currency)}</li>)}</ul>
                    )}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableScroll>
        )}
      </Loaded>
    </Section>
  );
}
