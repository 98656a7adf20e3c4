// A refund of one payment through Stripe (POST /admin/payments/:id/refund), after a confirmation. What a refund
// takes back: Stripe's refund webhook takes the card's seconds in proportion to the money refunded, as far as
// they are unused. So the form offers the money of the unused time (GET /admin/payments/:id answers it, from
// the SQL rule) and refunds more (money for time already talked) only when the administrator ticks the
// override; the API refuses the same without it. The card itself changes when Stripe confirms the refund.
import { useId, useRef, useState, type FormEvent } from 'react';
import { idempotencyKey } from '../api.ts';
import { useApi } from '../auth.tsx';
import { formatDateTime, formatDuration, formatMoney } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded } from '../ui.tsx';
import { RefundAnswer, RefundQuote, type PaymentRecord } from '../../shared/admin-contracts.ts';
import { FieldError, FormError, fieldErrors, invalidProps } from './form-errors.tsx';

type Reason = '' | 'requested_by_customer' | 'duplicate' | 'fraudulent';

export function RefundForm({ payment, onRefunded, onClose }: {
  payment: PaymentRecord;
  onRefunded: () => void;
  onClose: () => void;
}) {
  const api = useApi();
  const id = useId();
  const quote = useRequest(() => api.get(`/admin/payments/${encodeURIComponent(payment.payment_id)}`, RefundQuote),
    [payment.payment_id]);
  const [amount, setAmount] = useState('');
  const [override, setOverride] = useState(false);
  const [reason, setReason] = useState<Reason>('requested_by_customer');
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [amountError, setAmountError] = useState<string | null>(null);
  const [answer, setAnswer] = useState<RefundAnswer | null>(null);
  // One key per confirmed refund: a second click or a retry after a lost answer is the same refund at Stripe.
  const key = useRef<string | null>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);

  const money = (cents: number) => formatMoney(cents, payment.currency);
  // The admin types the currency's units; the API takes cents. Input handling only.
  const cents = amount.trim() === '' ? undefined : Math.round(Number(amount) * 100);
  const apiErrors = fieldErrors(error);
  const errors: Record<string, string> = { ...apiErrors, amount: amountError ?? apiErrors.amount_cents ?? '' };

  const unused = quote.data?.unused_refundable_cents ?? 0;
  // What an empty amount refunds: the unused time's money, or with the override everything not refunded yet.
  const defaultCents = override ? (quote.data?.refundable_cents ?? 0) : unused;
  const review = (event: FormEvent) => {
    event.preventDefault();
    const problem = cents !== undefined && !(cents > 0) ? 'Enter an amount greater than zero, or leave it empty.'
      : !override && (cents ?? defaultCents) > unused
        ? unused === 0
          ? 'No unused time is left on this card. To refund anyway, tick "Refund more than the unused time".'
          : `The unused time is worth ${money(unused)}. To refund more, tick "Refund more than the unused time".`
        : null;
    setAmountError(problem);
    setError(null);
    if (problem) return;
    key.current = null;
    setConfirming(true);
    queueMicrotask(() => confirmButton.current?.focus());
  };

  const refund = async () => {
    setBusy(true);
    setError(null);
    key.current ??= idempotencyKey();
    try {
      const result = await api.post(`/admin/payments/${encodeURIComponent(payment.payment_id)}/refund`, {
        ...(cents !== undefined && { amount_cents: cents }),
        ...(reason && { reason }),
        ...(override && { allow_more_than_unused: true }),
      }, RefundAnswer, { 'Idempotency-Key': key.current });
      setAnswer(result);
      setConfirming(false);
      onRefunded();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="panel" onSubmit={review} noValidate aria-labelledby={`${id}-title`}>
      <h4 id={`${id}-title`}>Refund the {money(payment.amount_cents)} payment of {formatDateTime(payment.created_at)}</h4>
      <p className="muted">
        {money(payment.refunded_cents)} refunded so far. Stripe refunds the money; the time card follows when
        Stripe confirms the refund (its webhook takes back the card's seconds in proportion, as far as they are
        unused).
      </p>
      <Loaded request={quote} label="Reading what is refundable…">
        {(q) => (
          <p id={`${id}-quote`}>
            {q.card_unused_seconds === null
              ? <>This payment granted no card: all of the {money(q.refundable_cents)} left is refundable.</>
              : <>Unused time: {formatDuration(q.card_unused_seconds)} of {formatDuration(q.card_total_seconds ?? 0)},
                  {' '}refundable: <strong>{money(q.unused_refundable_cents)}</strong> (of {money(q.refundable_cents)} not
                  refunded yet).</>}
          </p>
        )}
      </Loaded>
      {!answer && quote.data && (
        <>
          <div className="form-grid">
            <div className="field">
              <label htmlFor={`${id}-amount`}>Amount to refund ({payment.currency.toUpperCase()})</label>
              <input id={`${id}-amount`} type="number" inputMode="decimal" min="0" step="0.01" value={amount}
                disabled={confirming} onChange={(e) => setAmount(e.target.value)}
                aria-describedby={errors.amount ? `${id}-amount-error` : `${id}-amount-hint`}
                {...(errors.amount ? { 'aria-invalid': true } : {})} />
              <p id={`${id}-amount-hint`} className="hint">
                Leave empty to refund {override ? 'everything not refunded yet' : 'the unused time'} ({money(defaultCents)}).
              </p>
              <FieldError errors={errors} field="amount" inputId={`${id}-amount`} />
            </div>
            <div className="field">
              <label htmlFor={`${id}-reason`}>Reason given to Stripe</label>
              <select id={`${id}-reason`} value={reason} disabled={confirming}
                onChange={(e) => setReason(e.target.value as Reason)} {...invalidProps(errors, 'reason', `${id}-reason`)}>
                <option value="requested_by_customer">Requested by the customer</option>
                <option value="duplicate">Duplicate payment</option>
                <option value="fraudulent">Fraudulent</option>
                <option value="">No reason</option>
              </select>
              <FieldError errors={errors} field="reason" inputId={`${id}-reason`} />
            </div>
            <div className="field wide">
              <label className="checkbox">
                <input type="checkbox" checked={override} disabled={confirming} aria-describedby={`${id}-override-hint`}
                  onChange={(e) => { setOverride(e.target.checked); setAmountError(null); }} />
                Refund more than the unused time
              </label>
              <p id={`${id}-override-hint`} className="hint">
                Gives back money for time already used too. The card can only give back what is unused.
              </p>
            </div>
          </div>
          <FormError error={error ?? (amountError ? new Error(amountError) : null)} />
          {confirming ? (
            <div className="banner-warn" role="group" aria-labelledby={`${id}-confirm`}>
              <p id={`${id}-confirm`}>
                Refund {money(cents ?? defaultCents)}
                {cents === undefined ? (override ? ' (everything not refunded yet)' : ' (the unused time)') : ''} of this
                payment through Stripe?{(cents ?? defaultCents) > unused ? ' This is more than the unused time is worth.' : ''}
                {' '}This cannot be undone.
              </p>
              <div className="actions">
                <button type="button" className="danger" ref={confirmButton} disabled={busy} onClick={() => void refund()}>
                  {busy ? 'Refunding…' : 'Yes, refund'}
                </button>
                <button type="button" className="secondary" disabled={busy} onClick={() => setConfirming(false)}>Back</button>
              </div>
            </div>
          ) : (
            <div className="actions">
              <button type="submit">Review refund</button>
              <button type="button" className="secondary" onClick={onClose}>Cancel</button>
            </div>
          )}
        </>
      )}
      <div role="status" className="notice">
        {answer && (
          <>
            <p className="success">
              Stripe accepted the refund of {money(answer.amount_cents)} (refund {answer.refund_id}
              {answer.status ? `, ${answer.status}` : ''}).
            </p>
            <p>
              The time card follows when Stripe confirms the refund: its webhook takes back the card's seconds in
              proportion, as far as they are unused. Refresh the report to see it. (The server: {answer.note}.)
            </p>
          </>
        )}
      </div>
      {answer && <div className="actions"><button type="button" className="secondary" onClick={onClose}>Close</button></div>}
    </form>
  );
}
