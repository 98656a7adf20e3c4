// The gifts this caller bought: the code to pass on while nobody has redeemed it.
import { useApi } from '../auth.tsx';
import { formatDate, formatDuration } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { Loaded, Section } from '../ui.tsx';
import { usePackageName } from './pricing-context.tsx';
import { CopyCode } from './CopyCode.tsx';
import { GiftsResponse } from '../../shared/api-contracts.ts';


const STATUS: Record<string, string> = {
  pending: 'Not redeemed yet',
  expired: 'Expired before anyone redeemed it',
  revoked: 'Cancelled (refunded or disputed)',
};

/** `refreshKey` changes when a purchase lands, so a new gift shows up here too. */
export function GiftsPanel({ refreshKey }: { refreshKey: number }) {
  const packageName = usePackageName();
  const api = useApi();
  const gifts = useRequest(() => api.get('/time/gifts', GiftsResponse), [refreshKey]);
  return (
    <Section title="Gifts you bought" id="gifts">
      <Loaded request={gifts} label="Loading your gifts…">
        {({ gifts: list }) => list.length === 0
          ? <p className="muted">None yet. Tick “Buy as a gift” above to get an activation code you can pass on.</p>
          : (
            <ul className="gifts">
              {list.map((gift) => (
                <li key={gift.card_id}>
                  <p>
                    <strong>{formatDuration(gift.total_seconds)}</strong>
                    {gift.package_id && <span className="muted"> · {packageName(gift.package_id)}</span>}
                    <span className="muted"> · bought {formatDate(gift.created_at)}</span>
                  </p>
                  <p>{gift.redeemed ? 'Redeemed' : STATUS[gift.status] ?? gift.status}
                    {!gift.redeemed && gift.status === 'pending' && <> · redeemable until {formatDate(gift.expires_at)}</>}</p>
                  {gift.activation_code && !gift.redeemed && <CopyCode code={gift.activation_code} label="Activation code" />}
                </li>
              ))}
            </ul>
          )}
      </Loaded>
    </Section>
  );
}
