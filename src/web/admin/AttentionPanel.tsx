// Stripe events that can never apply (a package this database lacks, a paid amount that is not the price, a
// refund or dispute of a charge that is no purchase…), as GET /admin/attention lists them: Stripe was told
// they arrived, so nothing retries them; an administrator settles each by hand (a refund, an adjustment).
import { useApi } from '../auth.tsx';
import { useRequest } from '../use-request.ts';
import { formatDateTime } from '../format.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { AttentionList } from '../../shared/admin-contracts.ts';

export function AttentionPanel() {
  const api = useApi();
  const request = useRequest(() => api.get('/admin/attention?limit=50', AttentionList), []);
  return (
    <Section title="Needs attention" id="attention"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh</button>}>
      <Loaded request={request} label="Loading events that need attention…">
        {(list) => list.total === 0
          ? <p className="muted">Every Stripe event was applied.</p>
          : (
            <>
              <p>{list.total === 1 ? 'One Stripe event could not be applied and needs' : `${list.total} Stripe events could not be applied and need`} a decision.</p>
              <TableScroll label="Stripe events that need attention">
                <table className="compact" aria-label="Stripe events that need attention">
                  <thead>
                    <tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Problem</th><th scope="col">User</th></tr>
                  </thead>
                  <tbody>
                    {list.items.map((item) => (
                      <tr key={item.id}>
                        <td>{formatDateTime(item.created_at)}</td>
                        <td><code>{item.event_type}</code><br /><small className="muted">{item.event_id}</small></td>
                        <td><strong>{item.code.replaceAll('_', ' ')}</strong>: {item.message}</td>
                        <td>{item.user_id ?? '—'}</td>
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
