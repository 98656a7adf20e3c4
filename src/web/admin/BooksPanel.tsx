// The books (GET /admin/books): whether every second sold is accounted for (used, expired, taken back or
// still on a card) and every cent received is refunded or kept, per currency. The figures and the verdicts are
// the SQL function's (migrations/010_books.sql); this panel only lays them out.
import { useApi } from '../auth.tsx';
import { formatDateTime, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { Books, type SecondsFigures } from '../../shared/admin-contracts.ts';

const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const seconds = (s: number) => `${whole.format(s)} s`;
const groupName = (g: SecondsFigures) => (g.currency === undefined ? 'Total'
  : g.currency === null ? 'No payment (manual credits)' : `Bought in ${g.currency.toUpperCase()}`);

type Postpaid = NonNullable<Books['postpaid']>;

/**
 * Postpaid plans' identities (migrations/017): each a check with its verdict. The block's amount_exact adds
 * lines of every currency together, so it is not shown as money.
 */
function PostpaidBooks({ postpaid }: { postpaid: Postpaid }) {
  const { sessions, meter_events: events, lines } = postpaid;
  const checks: Array<{ name: string; detail: string; ok: boolean | null }> = [
    { name: 'Calls: billed = from cards + on plans',
      detail: `${seconds(sessions.billed_seconds)} = ${seconds(sessions.card_seconds)} + ${seconds(sessions.plan_seconds)}`,
      ok: sessions.sessions_out_of_step === 0 },
    { name: 'Meter events: one per usage charge',
      detail: `${whole.format(events.charges)} charges, ${whole.format(events.events)} events, ${whole.format(events.charges_without_event)} without one`,
      ok: events.charges_without_event === 0 && events.charges === events.events },
    { name: 'Invoice lines priced through their tiers',
      detail: `${whole.format(lines.lines)} line(s), ${seconds(lines.rated_seconds)} rated, ${whole.format(lines.lines_mispriced)} mispriced`,
      ok: lines.lines_mispriced === 0 },
    { name: 'Lines above the subscriber’s cap of today',
      detail: `${whole.format(lines.lines_over_cap)} (a cap lowered mid-period; reported, not a fault)`, ok: null },
  ];
  return (
    <>
      <h3 id="books-postpaid">Postpaid plans</h3>
      <p className={postpaid.ok ? 'success' : 'error'}>{postpaid.ok ? 'The postpaid books balance.' : 'The postpaid books do not balance.'}</p>
      <TableScroll labelledBy="books-postpaid">
        <table className="compact" aria-labelledby="books-postpaid">
          <thead><tr><th scope="col">Check</th><th scope="col">Figures</th><th scope="col">Holds</th></tr></thead>
          <tbody>
            {checks.map((c) => (
              <tr key={c.name}>
                <th scope="row">{c.name}</th>
                <td className="wrap">{c.detail}</td>
                <td>{c.ok === null ? '—' : c.ok ? 'Yes' : 'No'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableScroll>
    </>
  );
}

export function BooksPanel() {
  const api = useApi();
  const request = useRequest(() => api.get('/admin/books', Books), []);
  return (
    <Section title="Books" id="books"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Check the books again</button>}>
      <Loaded request={request} label="Checking the books…">
        {(books) => (
          <>
            <p role="status" className={books.ok ? 'success' : 'error'}>
              {books.ok ? 'The books balance.' : 'The books do not balance: see the rows marked below.'}
              {' '}<span className="muted">Checked {formatDateTime(books.generated_at)}.</span>
            </p>
            <h3 id="books-seconds">Time: sold + adjusted = used + expired + taken back + still on cards</h3>
            {books.seconds.cards_out_of_step > 0 && (
              <p className="error">{books.seconds.cards_out_of_step} card(s) hold seconds that their ledger does not add up to.</p>
            )}
            <TableScroll labelledBy="books-seconds">
              <table className="compact" aria-labelledby="books-seconds">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col" className="num">Sold</th>
                    <th scope="col" className="num">Adjusted</th>
                    <th scope="col" className="num">Used</th>
                    <th scope="col" className="num">Expired</th>
                    <th scope="col" className="num">Refunded</th>
                    <th scope="col" className="num">Revoked</th>
                    <th scope="col" className="num">Restored</th>
                    <th scope="col" className="num">On cards</th>
                    <th scope="col" className="num">Of which gifts not redeemed</th>
                    <th scope="col">Balances</th>
                  </tr>
                </thead>
                <tbody>
                  {[...books.seconds.by_currency, books.seconds.total].map((g) => (
                    <tr key={g.currency === undefined ? 'total' : g.currency ?? 'none'}>
                      <th scope="row">{groupName(g)}</th>
                      <td className="num">{seconds(g.granted_seconds)}</td>
                      <td className="num">{seconds(g.adjusted_seconds)}</td>
                      <td className="num">{seconds(g.used_seconds)}</td>
                      <td className="num">{seconds(g.expired_seconds)}</td>
                      <td className="num">{seconds(g.refunded_seconds)}</td>
                      <td className="num">{seconds(g.revoked_seconds)}</td>
                      <td className="num">{seconds(g.restored_seconds)}</td>
                      <td className="num">{seconds(g.outstanding_seconds)}</td>
                      <td className="num">{seconds(g.pending_gift_seconds)}</td>
                      <td>{g.ok ? 'Yes' : `No: off by ${seconds(g.difference_seconds)}`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableScroll>
            <h3 id="books-money">Money: received = refunded + kept, per currency</h3>
            {books.cents.by_currency.length === 0 ? <p className="muted">No payments yet.</p> : (
              <TableScroll labelledBy="books-money">
                <table className="compact" aria-labelledby="books-money">
                  <thead>
                    <tr>
                      <th scope="col">Currency</th>
                      <th scope="col" className="num">Payments</th>
                      <th scope="col" className="num">Received</th>
                      <th scope="col" className="num">Refunded</th>
                      <th scope="col" className="num">Kept</th>
                      <th scope="col" className="num">Of which disputed</th>
                      <th scope="col">Balances</th>
                    </tr>
                  </thead>
                  <tbody>
                    {books.cents.by_currency.map((m) => (
                      <tr key={m.currency}>
                        <th scope="row">{m.currency.toUpperCase()}</th>
                        <td className="num">{m.payments}</td>
                        <td className="num">{formatMoney(m.received_cents, m.currency)}</td>
                        <td className="num">{formatMoney(m.refunded_cents, m.currency)}</td>
                        <td className="num">{formatMoney(m.kept_cents, m.currency)}</td>
                        <td className="num">{formatMoney(m.disputed_cents, m.currency)}</td>
                        <td>{m.ok ? 'Yes' : `No: off by ${formatMoney(m.difference_cents, m.currency)}`}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableScroll>
            )}
            {books.postpaid && <PostpaidBooks postpaid={books.postpaid} />}
          </>
        )}
      </Loaded>
    </Section>
  );
}
