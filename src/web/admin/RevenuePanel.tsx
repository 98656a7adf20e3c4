// Revenue over the chosen period: totals, a bar per day and a line per package, as GET
// /admin/analytics/revenue answers them. The report carries no currency: the price list sells in one (usd).
import { formatMoney } from '../format.ts';
import type { RequestState } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import type { RevenueReport } from './admin-api.ts';
import { BarChart } from './BarChart.tsx';
import { Stats } from './Stats.tsx';

export function RevenuePanel({ request }: { request: RequestState<RevenueReport> & { reload: () => Promise<void> } }) {
  return (
    <Section title="Revenue" id="revenue"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh revenue</button>}>
      <Loaded request={request} label="Loading revenue…">
        {(report) => (
          <>
            <p className="muted">The last {report.days} days, by payment date.</p>
            <Stats items={[
              { label: 'Total revenue', value: formatMoney(report.total_revenue_cents) },
              { label: 'Refunds', value: formatMoney(report.refunds_cents) },
              { label: 'Net revenue', value: formatMoney(report.net_revenue_cents) },
              { label: 'Payments', value: report.total_transactions },
              { label: 'Average payment', value: formatMoney(report.avg_transaction_cents) },
            ]} />
            <BarChart title="Revenue per day" valueHeading="Revenue" formatValue={(cents) => formatMoney(cents)}
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
                        <td className="num">{formatMoney(p.revenue_cents)}</td>
                        <td className="num">{formatMoney(p.refunds_cents)}</td>
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
