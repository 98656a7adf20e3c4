// Back from Stripe Checkout. Stripe sends the buyer here before (or after) its webhook tells the server the
// payment succeeded, so the page asks the server every two seconds for a minute whether the purchase landed,
// then shows the new card, or for a gift the activation code to pass on.
import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '../auth.tsx';
import { formatDate, formatDuration, formatMoney } from '../format.ts';
import { ErrorMessage, Section } from '../ui.tsx';
import { useBalance } from './balance-context.tsx';
import { CopyCode } from './CopyCode.tsx';
import { isPlanCheckout, PlanReturn } from './PlanReturn.tsx';
import { CheckoutPurchaseResponse } from '../../shared/api-contracts.ts';

const POLL_EVERY_MS = 2_000;
const POLL_FOR_MS = 60_000;

/** GET /time/purchase/checkout/:sessionId once Stripe's webhook has landed. */
type Landed = Extract<CheckoutPurchaseResponse, { found: true }>;

type Phase =
  | { name: 'confirming' }
  | { name: 'landed'; purchase: Landed }
  | { name: 'not_yet' }
  | { name: 'error'; error: unknown };

export function PurchaseReturn({ onLanded }: { onLanded?: () => void }) {
  if (location.pathname === '/purchase/cancel') {
    return (
      <Section title="Purchase cancelled" id="purchase">
        <p role="status">You cancelled the checkout: nothing was charged. You can pick a package again below whenever you like.</p>
      </Section>
    );
  }
  const sessionId = new URLSearchParams(location.search).get('session_id') ?? '';
  if (!/^cs_\w+$/.test(sessionId)) {
    return (
      <Section title="Your purchase" id="purchase">
        <ErrorMessage error={new Error('This address lacks the checkout reference Stripe adds to it, so this page cannot tell which purchase you made. Your balance below shows every purchase that went through.')} />
      </Section>
    );
  }
  if (isPlanCheckout(sessionId)) return <PlanReturn />;
  return <CheckoutLanding sessionId={sessionId} onLanded={onLanded} />;
}

function CheckoutLanding({ sessionId, onLanded }: { sessionId: string; onLanded?: (() => void) | undefined }) {
  const api = useApi();
  const { reload: reloadBalance } = useBalance();
  const [phase, setPhase] = useState<Phase>({ name: 'confirming' });
  const [attempt, setAttempt] = useState(0);
  const landedRef = useRef(onLanded);
  landedRef.current = onLanded;

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = Date.now() + POLL_FOR_MS;
    setPhase({ name: 'confirming' });
    const ask = async () => {
      try {
        const answer = await api.get(`/time/purchase/checkout/${encodeURIComponent(sessionId)}`, CheckoutPurchaseResponse);
        if (stopped) return;
        if (answer.found) {
          setPhase({ name: 'landed', purchase: answer });
          void reloadBalance();
          landedRef.current?.();
        } else if (Date.now() >= deadline) {
          setPhase({ name: 'not_yet' });
        } else {
          timer = setTimeout(() => void ask(), POLL_EVERY_MS);
        }
      } catch (error) {
        if (!stopped) setPhase({ name: 'error', error });
      }
    };
    void ask();
    return () => { stopped = true; clearTimeout(timer); };
  }, [api, sessionId, attempt, reloadBalance]);

  const retry = useCallback(() => setAttempt((n) => n + 1), []);

  return (
    <Section title="Your purchase" id="purchase">
      <div role="status">
        {phase.name === 'confirming' && <p>Confirming your payment with Stripe… This usually takes a few seconds.</p>}
        {phase.name === 'not_yet' && (
          <p>
            Stripe has not confirmed your payment yet. Nothing is lost: your time will appear here and in your
            balance as soon as Stripe confirms it. <button type="button" className="link" onClick={retry}>Check again</button>
          </p>
        )}
      </div>
      {phase.name === 'error' && (
        <ErrorMessage onRetry={retry} error={phase.error} />
      )}
      {phase.name === 'landed' && <LandedPurchase purchase={phase.purchase} />}
    </Section>
  );
}

function LandedPurchase({ purchase: { payment, card } }: { purchase: Landed }) {
  if (!card) {
    return payment.status === 'failed' || payment.status === 'canceled'
      ? <div className="error" role="alert"><p>The payment did not go through{payment.failure_reason ? `: ${payment.failure_reason}` : ''}. Nothing was charged.</p></div>
      : <p>Stripe is still processing your payment of {formatMoney(payment.amount_cents, payment.currency)}. Your time appears as soon as it clears.</p>;
  }
  if (card.source === 'gift' && card.activation_code) {
    return (
      <div className="landed">
        <p className="success">Thank you! Your gift of {formatDuration(card.total_seconds)} is ready.</p>
        <p>Pass this activation code on. Whoever redeems it first gets the time; it can be redeemed until {formatDate(card.expires_at)}.</p>
        <CopyCode code={card.activation_code} label="Gift activation code" />
      </div>
    );
  }
  if (card.source === 'gift') {
    return <p className="success">Thank you! Your gift of {formatDuration(card.total_seconds)} has already been redeemed.</p>;
  }
  return (
    <p className="success">
      Thank you! Your payment of {formatMoney(payment.amount_cents, payment.currency)} went through and
      {' '}{formatDuration(card.total_seconds)} of talk time was added to your balance. The new card expires
      on {formatDate(card.expires_at)}.
    </p>
  );
}
