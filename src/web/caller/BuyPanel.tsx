// Buying time: the packages as the server prices them, and a Buy button that starts a Stripe Checkout and
// sends the browser there. Stripe brings the buyer back to /purchase/success, where PurchaseReturn waits for
// the payment to land.
import { useState } from 'react';
import { ApiError, idempotencyKey } from '../api.ts';
import { useApi, useAuth } from '../auth.tsx';
import { formatDuration } from '../format.ts';
import { usePricing, type PricingTierView } from './pricing-context.tsx';
import { errorText, Loaded, Section } from '../ui.tsx';
import { PurchaseResponse } from '../../shared/api-contracts.ts';


function purchaseErrorText(error: unknown): string {
  if (error instanceof ApiError && error.code === 'payments_unavailable') {
    return 'Purchases are not available right now: payments are not set up on this server. Nothing was charged.';
  }
  if (error instanceof ApiError && error.code === 'payment_provider_error') {
    return 'The payment provider could not be reached. Nothing was charged; please try again in a moment.';
  }
  return `The purchase could not start: ${errorText(error)} Nothing was charged.`;
}

export function BuyPanel() {
  const api = useApi();
  const { config } = useAuth();
  const pricing = usePricing();
  const [gift, setGift] = useState(false);
  const [starting, setStarting] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const buy = async (tier: PricingTierView) => {
    setStarting(tier.id);
    setError(null);
    try {
      const started = await api.post('/time/purchase', { package_id: tier.id, gift }, PurchaseResponse,
        { 'Idempotency-Key': idempotencyKey() });
      // Without a payment method the server always answers with a Checkout Session.
      if (started.kind !== 'checkout') throw new Error('The server started a payment this page cannot finish. Nothing was charged.');
      // Off to Stripe's hosted page; the button stays busy until the browser leaves.
      location.assign(started.checkout_url);
    } catch (e) {
      setError(e);
      setStarting(null);
    }
  };

  return (
    <Section title="Buy time" id="buy">
      {!config.purchases.enabled && (
        <p className="banner-warn" role="status">Purchases are not available on this server right now.</p>
      )}
      <label className="checkbox">
        <input type="checkbox" checked={gift} disabled={!config.purchases.enabled} onChange={(e) => setGift(e.target.checked)} />
        Buy as a gift: you get an activation code to pass on instead of the time
      </label>
      {error !== null && <div className="error" role="alert"><p>{purchaseErrorText(error)}</p></div>}
      <Loaded request={pricing} label="Loading the packages…">
        {({ pricing_tiers: tiers }) => tiers.length === 0
          ? <p className="muted">No packages are on sale at the moment.</p>
          : (
            <ul className="packages">
              {tiers.map((tier) => (
                <li key={tier.id} className="package">
                  <div>
                    <h3>{tier.name}</h3>
                    <p className="muted">{tier.description}</p>
                    <p>
                      {tier.bonus_minutes > 0
                        ? <>{formatDuration(tier.hours * 3600)} + <strong>{formatDuration(tier.bonus_minutes * 60)} bonus</strong>
                          {' '}= {formatDuration(tier.total_minutes * 60)} of talk</>
                        : <>{formatDuration(tier.total_minutes * 60)} of talk</>}
                    </p>
                  </div>
                  <div className="package-buy">
                    <p><span className="price">{tier.price_display}</span>
                      <br /><span className="muted">{tier.price_per_hour_display} per hour</span></p>
                    <button type="button" onClick={() => void buy(tier)}
                      disabled={starting !== null || !config.purchases.enabled}>
                      {starting === tier.id ? 'Opening checkout…' : 'Buy'}
                      <span className="visually-hidden"> {tier.name}{gift ? ' as a gift' : ''}</span>
                    </button>
                  </div>
                </li>
              ))}
            </ul>
          )}
      </Loaded>
    </Section>
  );
}
