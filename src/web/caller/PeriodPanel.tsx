// This period on a postpaid plan, as the invoice will say it: minutes talked, the cost so far (each invoice line
// rounded once, by the server), included minutes used and left, the lines themselves with their exact amounts,
// the spending cap with what is left of it, and a form to move the cap within the plan's maximum. A suspended
// plan says why, first, with the unpaid invoice's link. Then the caller's invoices with Stripe's hosted pages.
import { useId, useState, type FormEvent } from 'react';
import { useApi } from '../auth.tsx';
import { formatDate, formatDuration, formatExactMoney, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { errorText, Loaded, Section, TableScroll } from '../ui.tsx';
import { usePlan } from './plan-context.tsx';
import { InvoicesResponse, UsageCurrentResponse, type InvoiceView } from '../../shared/api-contracts.ts';

/** The server's reason ("the payment of invoice … failed; pay it …") as a sentence of its own. */
const sentence = (text: string) => text.charAt(0).toUpperCase() + text.slice(1).replace(/\.$/, '');

export function PeriodPanel() {
  const { usage } = usePlan();
  const postpaid = usage.data?.billing === 'postpaid' || usage.data?.status === 'suspended';
  if (usage.status === 'ok' && !postpaid) return null;
  return (
    <Section title="This period" id="period"
      actions={<button type="button" className="secondary" onClick={() => void usage.reload()}
        disabled={usage.status === 'loading'}>Refresh</button>}>
      <Loaded request={usage} label="Loading this period…">
        {(u) => <PeriodDetails usage={u} />}
      </Loaded>
    </Section>
  );
}

function PeriodDetails({ usage: u }: { usage: UsageCurrentResponse }) {
  const money = (cents: number) => formatMoney(cents, u.currency);
  return (
    <>
      {u.status === 'suspended' && (
        <div className="error suspended" role="alert">
          <p><strong>Calls on your plan are paused.</strong> {sentence(u.suspended_reason ?? 'an invoice is unpaid')}.</p>
          {u.hosted_invoice_url && (
            <p><a className="button danger" href={u.hosted_invoice_url} target="_blank" rel="noopener noreferrer">Pay the invoice at Stripe</a></p>
          )}
          <p className="muted">Your prepaid time cards still work meanwhile.</p>
        </div>
      )}
      {u.cancel_at_period_end && (
        <p className="banner-warn" role="status">Your plan ends on {formatDate(u.period_end)}; after that calls use prepaid time.</p>
      )}
      <p className="muted">{u.plan?.name ?? 'Your plan'}, period {formatDate(u.period_start)} to {formatDate(u.period_end)}.</p>
      <div className="stats">
        <div className="stat"><div className="value">{formatDuration(u.total_seconds)}</div><div className="label">Talked this period ({u.total_calls} {u.total_calls === 1 ? 'call' : 'calls'})</div></div>
        <div className="stat"><div className="value">{money(u.plan_cost_cents)}</div><div className="label">Cost so far</div></div>
        {u.included_seconds > 0 && (
          <div className="stat"><div className="value">{formatDuration(u.included_seconds_left)}</div>
            <div className="label">Included left ({formatDuration(u.included_seconds_used)} of {formatDuration(u.included_seconds)} used)</div></div>
        )}
      </div>
      <InvoiceLines usage={u} />
      <Cap usage={u} />
    </>
  );
}

function InvoiceLines({ usage: u }: { usage: UsageCurrentResponse }) {
  if (u.lines.length === 0) return <p className="muted">Nothing to pay for this period yet.</p>;
  return (
    <>
      <h3 id="period-lines">Invoice lines so far</h3>
      <TableScroll labelledBy="period-lines">
        <table>
          <caption className="visually-hidden">This period’s invoice lines: each rounded once to the cent</caption>
          <thead><tr><th scope="col">Line</th><th scope="col" className="num">Time</th><th scope="col" className="num">Exact</th><th scope="col" className="num">Amount</th></tr></thead>
          <tbody>
            {u.lines.map((line) => (
              <tr key={`${line.kind}:${line.plan_key}:${line.plan_version}`}>
                <td>{line.kind === 'fee' ? 'Monthly fee' : 'Usage'} <span className="muted">· {line.plan_key} v{line.plan_version}</span></td>
                <td className="num">{line.kind === 'usage'
                  ? <>{formatDuration(line.rated_seconds ?? 0)}{(line.included_seconds ?? 0) > 0 && <span className="muted"> + {formatDuration(line.included_seconds ?? 0)} included</span>}</>
                  : '—'}</td>
                <td className="num">{line.amount_exact === undefined ? '—' : formatExactMoney(line.amount_exact, line.currency)}</td>
                <td className="num">{formatMoney(line.amount_cents, line.currency)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot><tr><th scope="row" colSpan={3}>Cost so far</th><td className="num"><strong>{formatMoney(u.plan_cost_cents, u.currency)}</strong></td></tr></tfoot>
        </table>
      </TableScroll>
    </>
  );
}

/** Whole dollars and cents as typed ("25", "25.5", "25.50") to integer cents; null when it is not an amount. */
function parseCents(text: string): number | null {
  const match = /^\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
}

function Cap({ usage: u }: { usage: UsageCurrentResponse }) {
  const api = useApi();
  const { reload } = usePlan();
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const ids = { input: useId(), hint: useId(), error: useId(), bar: useId() };
  if (u.cap_cents === null) return null;
  const money = (cents: number) => formatMoney(cents, u.currency);
  const used = u.cap_used_cents ?? 0;
  const left = u.cap_left_cents ?? 0;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(null);
    const cents = parseCents(text);
    if (cents === null || cents <= 0) {
      setError('Enter the cap as an amount, like 25 or 25.50.');
      return;
    }
    // The plan's maximum is the server's rule (set_spending_cap): its refusal is shown as it words it.
    setError(null);
    setBusy(true);
    try {
      const answer = await api.put('/api/usage/cap', { cap_cents: cents }, UsageCurrentResponse);
      setSaved(`Your cap is now ${formatMoney(answer.cap_cents ?? cents, answer.currency)}.`);
      setText('');
      await reload();
    } catch (e) {
      setError(`The cap was not changed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <h3>Spending cap</h3>
      <p id={ids.bar}>{money(used)} of your {money(u.cap_cents)} cap used: <strong>{money(left)} left</strong> this period.</p>
      <progress className="cap-bar" max={u.cap_cents} value={Math.min(used, u.cap_cents)} aria-labelledby={ids.bar} />
      <p className="muted hint">Calls stop at the cap (with warnings 5 and 1 minutes before). The monthly fee does not count against it.</p>
      <form onSubmit={(e) => void submit(e)} noValidate className="cap-form">
        <div className="field">
          <label htmlFor={ids.input}>New cap ({u.currency.toUpperCase()})</label>
          <p id={ids.hint} className="muted hint">{u.max_cap_cents === null ? 'Any amount.' : `Up to ${money(u.max_cap_cents)}.`}</p>
          <input id={ids.input} name="cap" inputMode="decimal" value={text} onChange={(e) => setText(e.target.value)}
            autoComplete="off" aria-invalid={error !== null || undefined}
            aria-describedby={error !== null ? `${ids.hint} ${ids.error}` : ids.hint} />
        </div>
        {error !== null && <div className="error" role="alert" id={ids.error}><p>{error}</p></div>}
        <button type="submit" disabled={busy}>{busy ? 'Saving…' : 'Set cap'}</button>
      </form>
      <div role="status">{saved && <p className="success">{saved}</p>}</div>
    </>
  );
}

const INVOICE_STATUS: Record<InvoiceView['status'], string> = {
  draft: 'Being prepared', open: 'Due', paid: 'Paid', uncollectible: 'Uncollectible', void: 'Void',
};

/** `refreshKey` changes when the plan does (an invoice may have landed). */
export function InvoicesPanel({ refreshKey = 0 }: { refreshKey?: number }) {
  const api = useApi();
  const { current } = usePlan();
  const invoices = useRequest(() => api.get('/api/invoices?limit=24', InvoicesResponse), [refreshKey, current.data]);
  if (invoices.status === 'ok' && invoices.data.invoices.length === 0) return null;
  return (
    <Section title="Invoices" id="invoices">
      <Loaded request={invoices} label="Loading your invoices…">
        {({ invoices: list }) => (
          <TableScroll label="Your invoices">
            <table>
              <caption className="visually-hidden">Your invoices, newest first, with Stripe’s pages</caption>
              <thead><tr><th scope="col">Period</th><th scope="col" className="num">Total</th><th scope="col">Status</th><th scope="col">Invoice</th></tr></thead>
              <tbody>
                {list.map((i) => (
                  <tr key={i.invoice_id} className={i.payment_failed && i.status === 'open' ? 'highlight' : undefined}>
                    <td>{i.period_start ? `${formatDate(i.period_start)} to ${formatDate(i.period_end)}` : formatDate(i.created_at)}</td>
                    <td className="num">{formatMoney(i.total_cents, i.currency)}</td>
                    <td>{INVOICE_STATUS[i.status]}{i.payment_failed && i.status === 'open' && <strong> · payment failed</strong>}</td>
                    <td>{i.hosted_invoice_url
                      ? <a href={i.hosted_invoice_url} target="_blank" rel="noopener noreferrer">{i.status === 'open' ? 'Pay' : 'View'}<span className="visually-hidden"> invoice {i.invoice_id}</span></a>
                      : <span className="muted">not ready</span>}</td>
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
