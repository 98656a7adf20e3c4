// Redeeming an activation code (a gift someone passed on). The code is sent as typed: the server ignores
// case, spaces and dashes and tells a typo from an unknown code, and each refusal gets its own sentence.
import { useId, useState, type FormEvent } from 'react';
import { ApiError } from '../api.ts';
import { useApi } from '../auth.tsx';
import { formatDate, formatDuration } from '../format.ts';
import { errorText, Section } from '../ui.tsx';
import { useBalance } from './balance-context.tsx';
import { ActivateResponse } from '../../shared/api-contracts.ts';


/** What each refusal means for the person holding the code. */
const REFUSAL: Record<string, string> = {
  malformed_code: 'That is not an activation code: a code has 12 letters and digits, like ABCD-EFGH-JK2V (there is no 0, O, 1, I or L in a code).',
  mistyped_code: 'This code has a typo: one of its characters is wrong. Check each character against the code you were given.',
  unknown_code: 'No time card has this code. Check that you copied the whole code from the right message.',
  code_already_used: 'This code has already been redeemed, so it cannot add time again.',
  code_expired: 'This code has expired and can no longer be redeemed.',
  code_revoked: 'This time card was cancelled (its payment was refunded or disputed), so the code no longer works.',
  rate_limited: 'Too many wrong codes in a short time. Please wait a few minutes, then try again.',
};

/** The server's own words add something (a date, whose redemption) for these. */
const WITH_DETAIL = new Set(['code_already_used', 'code_expired']);

function Refusal({ error, id }: { error: unknown; id: string }) {
  const known = error instanceof ApiError ? REFUSAL[error.code] : undefined;
  return (
    <div className="error" role="alert" id={id}>
      <p>{known ?? `The code could not be redeemed: ${errorText(error)}`}</p>
      {known && error instanceof ApiError && WITH_DETAIL.has(error.code) && <p>Details: {error.message}.</p>}
    </div>
  );
}

export function RedeemPanel() {
  const api = useApi();
  const balance = useBalance();
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [empty, setEmpty] = useState(false);
  const [added, setAdded] = useState<ActivateResponse['card'] | null>(null);
  const ids = { input: useId(), hint: useId(), error: useId() };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setAdded(null);
    setError(null);
    setEmpty(code.trim() === '');
    if (code.trim() === '') return;
    setBusy(true);
    try {
      const answer = await api.post('/time/activate', { activation_code: code }, ActivateResponse);
      setAdded(answer.card);
      setCode('');
      void balance.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const invalid = empty || error !== null;
  return (
    <Section title="Redeem a code" id="redeem">
      <form onSubmit={(e) => void submit(e)} noValidate>
        <div className="field">
          <label htmlFor={ids.input}>Activation code</label>
          <p id={ids.hint} className="muted hint">12 letters and digits, like ABCD-EFGH-JK2V. Upper or lower case, spaces and dashes are all fine.</p>
          <input id={ids.input} name="activation_code" value={code} onChange={(e) => setCode(e.target.value)}
            autoComplete="off" autoCapitalize="characters" spellCheck={false} maxLength={64}
            aria-invalid={invalid || undefined}
            aria-describedby={invalid ? `${ids.hint} ${ids.error}` : ids.hint} />
        </div>
        {empty && <p className="field-error" role="alert" id={ids.error}>Enter the activation code first.</p>}
        {error !== null && <Refusal error={error} id={ids.error} />}
        <button type="submit" disabled={busy}>{busy ? 'Redeeming…' : 'Redeem'}</button>
      </form>
      {/* Always present, so screen readers announce the confirmation when it appears. */}
      <div role="status">
        {added && (
          <p className="success">
            Added {formatDuration(added.total_seconds)} to your time. This card expires on {formatDate(added.expires_at)}.
          </p>
        )}
      </div>
    </Section>
  );
}
