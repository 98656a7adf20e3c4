// Stripe's invoices for postpaid plans (GET /admin/invoices?status=), as its webhooks told them: outstanding
// (open, failed included) by default, failed ones alone, or any other status; totals per currency, and each
// invoice with Stripe's hosted page, where the customer pays it.
import { useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDate, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { INVOICE_FILTERS, InvoiceList, type InvoiceFilter } from '../../shared/admin-contracts.ts';

const FILTER_NAMES: Record<InvoiceFilter, string> = {
  outstanding: 'Outstanding (not paid yet)', failed: 'Payment failed', paid: 'Paid', void: 'Void', uncollectible: 'Uncollectible', all: 'All',
};

export function InvoicesPanel({ version }: { version: number }) {
  const api = useApi();
  const [status, setStatus] = useState<InvoiceFilter>('outstanding');
  const request = useRequest(() => api.get(`/admin/invoices?status=${status}&limit=100`, InvoiceList), [status, version]);
  return (
    <Section title="Invoices" id="invoices"
      actions={<button type="button" className="secondary" onClick={() => void request.reload()}>Refresh invoices</button>}>
      <div className="admin-toolbar">
        <div className="field">
          <label htmlFor="invoice-filter">Show</label>
          <select id="invoice-filter" value={status} onChange={(e) => setStatus(e.target.value as InvoiceFilter)}>
            {INVOICE_FILTERS.map((f) => <option key={f} value={f}>{FILTER_NAMES[f]}</option>)}
          </select>
        </div>
      </div>
      <Loaded request={request} label="Loading invoices…">
        {(list) => list.invoices.length === 0 ? <p className="muted">No invoices of this kind.</p> : (
          <>
            <ul className="plain" aria-label="Invoice totals per currency">
              {list.totals.map((t) => (
                <li key={t.currency}>{t.currency.toUpperCase()}: {t.invoices} invoice(s), {formatMoney(t.amount_due_cents, t.currency)} due
                  {t.amount_paid_cents > 0 && `, ${formatMoney(t.amount_paid_cents, t.currency)} paid`}</li>
              ))}
            </ul>
            <TableScroll label="Invoices">
              <table className="compact" aria-label="Invoices">
                <thead>
                  <tr><th scope="col">Invoice</th><th scope="col">User</th><th scope="col">Status</th><th scope="col">Period</th>
                    <th scope="col" className="num">Total</th><th scope="col" className="num">Due</th><th scope="col">Stripe</th></tr>
                </thead>
                <tbody>
                  {list.invoices.map((i) => (
                    <tr key={i.invoice_id}>
                      <th scope="row" className="code-small">{i.invoice_id}</th>
                      <td className="user-id">{i.user_id}</td>
                      <td>{i.payment_failed && i.status === 'open' ? 'Payment failed' : i.status}</td>
                      <td>{i.period_start ? `${formatDate(i.period_start)} – ${formatDate(i.period_end)}` : '—'}</td>
                      <td className="num">{formatMoney(i.total_cents, i.currency)}</td>
                      <td className="num">{formatMoney(i.amount_due_cents, i.currency)}</td>
                      <td>{i.hosted_invoice_url
                        ? <a href={i.hosted_invoice_url} target="_blank" rel="noopener noreferrer">Open invoice {i.invoice_id}</a> : '—'}</td>
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
