// A manual correction of a user's time with a reason (POST /admin/users/:id/adjust). A credit becomes a card
// of its own; a debit is taken like usage and never goes below zero, so the answer says what was really
// taken. One idempotency key per filled-in form: a double click or a retry is the same adjustment.
import { useId, useRef, useState, type FormEvent } from 'react';
import { idempotencyKey } from '../api.ts';
import { useApi } from '../auth.tsx';
import { formatDuration } from '../format.ts';
import { Adjustment } from '../../shared/admin-contracts.ts';
import { FieldError, FormError, fieldErrors, invalidProps } from './form-errors.tsx';

type Unit = 'minutes' | 'seconds';
const UNIT_SECONDS: Record<Unit, number> = { minutes: 60, seconds: 1 };

export function AdjustForm({ userId, onAdjusted }: { userId: string; onAdjusted: () => void }) {
  const api = useApi();
  const id = useId();
  const [direction, setDirection] = useState<'add' | 'remove'>('add');
  const [amount, setAmount] = useState('');
  const [unit, setUnit] = useState<Unit>('minutes');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [answer, setAnswer] = useState<Adjustment | null>(null);
  const [amountError, setAmountError] = useState<string | null>(null);
  const key = useRef<string | null>(null);
  // Any edit makes it a different adjustment, with a key of its own.
  const edit = <T,>(set: (value: T) => void) => (value: T) => {
    key.current = null;
    set(value);
  };

  const amountNumber = Number(amount);
  const amountProblem = amount.trim() === '' || !(amountNumber > 0) ? 'Enter an amount greater than zero.' : null;
  // The amount is checked here (it must become whole seconds first); everything else by the API.
  const apiErrors = fieldErrors(error);
  const errors: Record<string, string> = { ...apiErrors, amount: amountError ?? apiErrors.seconds ?? '' };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setAmountError(amountProblem);
    setError(null);
    if (amountProblem) return;
    setBusy(true);
    setAnswer(null);
    key.current ??= idempotencyKey();
    // Converting the typed unit to the API's seconds is input handling; every figure shown comes back from it.
    const seconds = Math.round(amountNumber * UNIT_SECONDS[unit]) * (direction === 'add' ? 1 : -1);
    try {
      const result = await api.post(`/admin/users/${encodeURIComponent(userId)}/adjust`,
        { seconds, reason }, Adjustment, { 'Idempotency-Key': key.current });
      setAnswer(result);
      setAmount('');
      setReason('');
      key.current = null;
      onAdjusted();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="panel" onSubmit={(e) => void submit(e)} noValidate aria-labelledby={`${id}-title`}>
      <h4 id={`${id}-title`}>Adjust time</h4>
      <fieldset>
        <legend>Change</legend>
        <label className="checkbox">
          <input type="radio" name={`${id}-direction`} value="add" checked={direction === 'add'}
            onChange={() => edit(setDirection)('add')} /> Add time
        </label>
        <label className="checkbox">
          <input type="radio" name={`${id}-direction`} value="remove" checked={direction === 'remove'}
            onChange={() => edit(setDirection)('remove')} /> Remove time
        </label>
      </fieldset>
      <div className="form-grid">
        <div className="field">
          <label htmlFor={`${id}-amount`}>Amount</label>
          <input id={`${id}-amount`} type="number" inputMode="decimal" min="0" step="any" value={amount}
            onChange={(e) => edit(setAmount)(e.target.value)}
            {...invalidProps(errors, 'amount', `${id}-amount`)} />
          <FieldError errors={errors} field="amount" inputId={`${id}-amount`} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-unit`}>Unit</label>
          <select id={`${id}-unit`} value={unit} onChange={(e) => edit(setUnit)(e.target.value as Unit)}>
            <option value="minutes">minutes</option>
            <option value="seconds">seconds</option>
          </select>
        </div>
        <div className="field wide">
          <label htmlFor={`${id}-reason`}>Reason (kept in the ledger with your id)</label>
          <textarea id={`${id}-reason`} rows={2} value={reason} onChange={(e) => edit(setReason)(e.target.value)}
            {...invalidProps(errors, 'reason', `${id}-reason`)} />
          <FieldError errors={errors} field="reason" inputId={`${id}-reason`} />
        </div>
      </div>
      <FormError error={error ?? (amountError ? new Error(amountError) : null)} />
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : direction === 'add' ? 'Add time' : 'Remove time'}
        </button>
      </div>
      <div role="status" className="notice">
        {answer && <AdjustmentAnswer answer={answer} />}
      </div>
    </form>
  );
}

function AdjustmentAnswer({ answer }: { answer: Adjustment }) {
  const added = answer.adjusted_seconds >= 0;
  return (
    <p className="success">
      {answer.replayed ? 'This adjustment had already been made; nothing changed twice. ' : ''}
      {added ? 'Added' : 'Removed'} {formatDuration(Math.abs(answer.adjusted_seconds))}.
      {' '}Balance now {formatDuration(answer.remaining_seconds)}.
      {answer.shortfall_seconds > 0 && ` ${formatDuration(answer.shortfall_seconds)} could not be removed: a balance never goes below zero.`}
    </p>
  );
}
