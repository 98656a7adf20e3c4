// Revenue over the chosen period: totals, a bar per day and a line per package, as GET
// /admin/analytics/revenue answers them. The report is in one currency (amounts of different currencies are
// never added); when payments came in several, the administrator picks which one to read.
import { formatMoney } from '../format.ts';
import type { RequestState } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import type { RevenueReport } from '../../shared/admin-contracts.ts';
import { BarChart } from './BarChart.tsx';
import { Stats } from './Stats.tsx';

export function RevenuePanel({ request, onCurrency }: {
  request: RequestState<RevenueReport> & { reload: () => Promise<void> };
  onCurrency: (currency: string) => void;
}) {
  return (
    <Section title="Revenue" id="revenue"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh revenue</button>}>
      <Loaded request={request} label="Loading revenue…">
        {(report) => {
          const money = (cents: number) => formatMoney(cents, report.currency);
          return (
          <>
            <p className="muted">The last {report.days} days, by payment date, in {report.currency.toUpperCase()}.</p>
            {currencies(report).length > 1 && (
              <div className="field">
                <label htmlFor="revenue-currency">Currency</label>
                <select id="revenue-currency" value={report.currency} onChange={(e) => onCurrency(e.target.value)}>
                  {currencies(report).map((c) => <option key={c} value={c}>{c.toUpperCase()}</option>)}
                </select>
              </div>
            )}
            <Stats items={[
              { label: 'Total revenue', value: money(report.total_revenue_cents) },
              { label: 'Refunds', value: money(report.refunds_cents) },
              { label: 'Net revenue', value: money(report.net_revenue_cents) },
              { label: 'Payments', value: report.total_transactions },
              { label: 'Average payment', value: money(report.avg_transaction_cents) },
            ]} />
            <BarChart title="Revenue per day" valueHeading="Revenue" formatValue={(cents) => money(cents)}
              data={report.daily_revenue.map((d) => ({ label: d.date, value: d.revenue_cents }))} />
            <h3 id="revenue-packages">Per package</h3>
            {report.package_stats.length === 0 ? <p className="muted">No payments in this period.</p> : (
              <TableScroll labelledBy="revenue-packages">
                <table className="compact" aria-labelledby="revenue-packages">
                  <thead>
                    <tr>
                      <th scope="col">Package</th>
                      <th scope="col" className="num">Payments</th>
                      <th scope="col" className="num">Revenue</th>
                      <th scope="col" className="num">Refunds</th>
                    </tr>
                  </thead>
                  <tbody>
                    {report.package_stats.map((p) => (
                      <tr key={p.package_id ?? 'none'}>
                        <th scope="row">{p.name ?? p.package_id ?? 'No package'}</th>
                        <td className="num">{p.transactions}</td>
                        <td className="num">{money(p.revenue_cents)}</td>
                        <td className="num">{money(p.refunds_cents)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
          </>
          );
        }}
      </Loaded>
    </Section>
  );
}

/** The report's currency and every other one paid in over the period. */
function currencies(report: RevenueReport): string[] {
  return [...new Set([report.currency, ...report.currencies.map((c) => c.currency)])].sort();
}
