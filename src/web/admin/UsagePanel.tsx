// Who talked and for how long over the chosen period, as GET /admin/analytics/usage answers it.
import { useApi } from '../auth.tsx';
import { formatDuration } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section } from '../ui.tsx';
import { UsageReport } from '../../shared/admin-contracts.ts';
import { BarChart } from './BarChart.tsx';
import { Stats } from './Stats.tsx';

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function UsagePanel({ days }: { days: number }) {
  const api = useApi();
  const request = useRequest(() => api.get(`/admin/analytics/usage?days=${days}`, UsageReport), [days]);
  return (
    <Section title="Usage" id="usage"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh usage</button>}>
      <Loaded request={request} label="Loading usage…">
        {(report) => (
          <>
            <p className="muted">The last {report.days} days, by call start.</p>
            <Stats items={[
              { label: 'Active users', value: report.active_users },
              { label: 'Calls', value: report.total_sessions },
              { label: 'Hours used', value: number.format(report.total_hours_used) },
              { label: 'Average call', value: `${number.format(report.avg_session_minutes)} min` },
              { label: 'On a call now', value: report.active_sessions_now },
            ]} />
            <BarChart title="Talk time per day" valueHeading="Talk time" formatValue={formatDuration}
              data={report.daily_usage.map((d) => ({ label: d.date, value: d.seconds }))} />
          </>
        )}
      </Loaded>
    </Section>
  );
}
