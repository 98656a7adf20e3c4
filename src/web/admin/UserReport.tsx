// One user's report (GET /admin/reports/user/:id): balance, cards, calls, payments and the ledger, with the
// two things an administrator does for a user: adjust their time, refund a payment.
import { useEffect, useRef, useState } from 'react';
import { ApiError } from '../api.ts';
import { useApi } from '../auth.tsx';
import { formatDate, formatDateTime, formatDuration, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, TableScroll } from '../ui.tsx';
import { UserReport as Report, type PaymentRecord } from '../../shared/admin-contracts.ts';
import { AdjustForm } from './AdjustForm.tsx';
import { RefundForm } from './RefundForm.tsx';
import { Stats } from './Stats.tsx';

const REFUNDABLE = new Set<PaymentRecord['status']>(['succeeded', 'partially_refunded']);

export function UserReport({ userId, onChanged, onClose }: { userId: string; onChanged: () => void; onClose: () => void }) {
  const api = useApi();
  const request = useRequest(() => api.get(`/admin/reports/user/${encodeURIComponent(userId)}`, Report), [userId]);
  const [refunding, setRefunding] = useState<string | null>(null);
  const title = useRef<HTMLHeadingElement>(null);
  // Opening a report moves the keyboard to it, so the next Tab continues inside it.
  useEffect(() => {
    title.current?.focus();
    setRefunding(null);
  }, [userId]);
  const unknown = request.status === 'error' && request.error instanceof ApiError && request.error.code === 'unknown_user';
  // The request keeps its last answer while it loads another user's: never show one user's figures under another's id.
  const shown: typeof request = request.data && request.data.user_id !== userId ? { ...request, data: null } as typeof request : request;
  const report = shown.data;
  // The form stays while a first grant's report loads (a ref: it only remembers what this render already knew).
  const adjustableFor = useRef<string | null>(null);
  if (report || unknown) adjustableFor.current = userId;
  const adjustable = adjustableFor.current === userId;
  const changed = () => {
    void request.reload();
    onChanged();
  };

  return (
    <section className="panel" id="user-report" aria-labelledby="user-report-title">
      <div className="card-header">
        <h3 id="user-report-title" className="report-title" tabIndex={-1} ref={title}>
          Report for user <span className="user-id">{userId}</span>
        </h3>
        <div className="actions">
          <button type="button" className="secondary" onClick={() => void request.reload()}>Refresh report</button>
          <button type="button" className="secondary" onClick={onClose}>Close report</button>
        </div>
      </div>
      {unknown ? (
        // Opened by id, a user with no card, call or payment yet: nothing to report, but time can be granted.
        <p className="notice" role="status">Billing knows nothing of this user yet: no time cards, calls or payments. Time granted here is theirs when they sign in with this id.</p>
      ) : (
        <Loaded request={shown} label="Loading the user's report…">
          {(loaded) => (
            <>
              <Stats items={[
                { label: 'Balance', value: formatDuration(loaded.balance.total_seconds) },
                { label: 'Cards with time', value: loaded.balance.card_count },
                { label: 'Next expiry', value: formatDate(loaded.balance.next_expiry) },
                { label: 'Calls', value: loaded.sessions.length },
              ]} />
              <p className="muted">As of {formatDateTime(loaded.generated_at)}.</p>
            </>
          )}
        </Loaded>
      )}
      {/* One place in the tree whether the report exists yet or not: a first grant keeps its answer on screen. */}
      {adjustable && <AdjustForm key={userId} userId={userId} onAdjusted={changed} />}
      {report && (
        <>
          <h4 id="report-payments">Payments</h4>
          {report.payments.length === 0 ? <p className="muted">No payments.</p> : (
            <TableScroll labelledBy="report-payments">
              <table className="compact" aria-labelledby="report-payments">
                <thead>
                  <tr>
                    <th scope="col">Date</th><th scope="col">Package</th><th scope="col" className="num">Amount</th>
                    <th scope="col">Status</th><th scope="col" className="num">Refunded</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {report.payments.map((p) => (
                    <tr key={p.payment_id}>
                      <td>{formatDateTime(p.created_at)}</td>
                      <td>{p.tier_id ?? '—'}{p.gift ? ' (gift)' : ''}</td>
                      <td className="num">{formatMoney(p.amount_cents, p.currency)}</td>
                      <td>{p.status.replace('_', ' ')}{p.failure_reason ? `: ${p.failure_reason}` : ''}</td>
                      <td className="num">{formatMoney(p.refunded_cents, p.currency)}</td>
                      <td>
                        {REFUNDABLE.has(p.status) && (
                          <button type="button" className="secondary" aria-expanded={refunding === p.payment_id}
                            aria-label={`Refund the ${formatMoney(p.amount_cents, p.currency)} payment of ${formatDate(p.created_at)}`}
                            onClick={() => setRefunding(refunding === p.payment_id ? null : p.payment_id)}>
                            Refund…
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          )}
          {refunding && report.payments.some((p) => p.payment_id === refunding) && (
            <RefundForm payment={report.payments.find((p) => p.payment_id === refunding)!}
              onRefunded={changed} onClose={() => setRefunding(null)} />
          )}
          <h4 id="report-cards">Cards</h4>
          {report.cards.length === 0 ? <p className="muted">No cards.</p> : (
            <TableScroll labelledBy="report-cards">
              <table className="compact" aria-labelledby="report-cards">
                <thead>
                  <tr>
                    <th scope="col">Card</th><th scope="col">Status</th><th scope="col" className="num">Left</th>
                    <th scope="col" className="num">Of</th><th scope="col">Expires</th>
                  </tr>
                </thead>
                <tbody>
                  {report.cards.map((c) => (
                    <tr key={c.card_id}>
                      <td className="wrap">{c.tier_id ?? c.source}{c.note ? <span className="muted"> — {c.note}</span> : null}</td>
                      <td>{c.status}</td>
                      <td className="num">{formatDuration(c.remaining_seconds)}</td>
                      <td className="num">{formatDuration(c.total_seconds)}</td>
                      <td>{formatDate(c.expires_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          )}
          <h4 id="report-calls">Calls</h4>
          {report.sessions.length === 0 ? <p className="muted">No calls.</p> : (
            <TableScroll labelledBy="report-calls">
              <table className="compact" aria-labelledby="report-calls">
                <thead>
                  <tr>
                    <th scope="col">Started</th><th scope="col">Status</th><th scope="col" className="num">Length</th>
                    <th scope="col" className="num">Billed</th><th scope="col" className="num">Cost</th>
                  </tr>
                </thead>
                <tbody>
                  {report.sessions.map((s) => (
                    <tr key={s.session_id}>
                      <td>{formatDateTime(s.started_at)}</td>
                      <td>{s.status.replace('_', ' ')}</td>
                      <td className="num">{formatDuration(s.duration_seconds)}</td>
                      <td className="num">{formatDuration(s.billed_seconds)}</td>
                      <td className="num">{formatMoney(s.cost_cents)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          )}
          <h4 id="report-ledger">Ledger</h4>
          {report.ledger.length === 0 ? <p className="muted">No entries.</p> : (
            <TableScroll labelledBy="report-ledger">
              <table className="compact" aria-labelledby="report-ledger">
                <thead>
                  <tr>
                    <th scope="col">When</th><th scope="col">Kind</th><th scope="col" className="num">Change</th>
                    <th scope="col" className="num">Card after</th><th scope="col">Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {report.ledger.map((l) => (
                    <tr key={l.id}>
                      <td>{formatDateTime(l.created_at)}</td>
                      <td>{l.kind}</td>
                      <td className="num">{l.seconds < 0 ? '−' : '+'}{formatDuration(Math.abs(l.seconds))}</td>
                      <td className="num">{formatDuration(l.remaining_after)}</td>
                      <td className="wrap">{l.reason ?? '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
          )}
        </>
      )}
    </section>
  );
}
