// The balance at a glance: time left, each card with what is left on it and when it expires (the one that
// expires next is the one calls use first, so it is marked), a warning when little is left and a way out
// when nothing is.
import { formatDate, formatDuration } from '../format.ts';
import { Loaded, Section, TableScroll } from '../ui.tsx';
import { usePackageName } from './pricing-context.tsx';
import { useBalance, type BalanceView } from './balance-context.tsx';
import { usePlan } from './plan-context.tsx';

/** Under this, the page warns: about one more conversation. */
const LOW_BALANCE_SECONDS = 30 * 60;

const SOURCE_LABEL: Record<BalanceView['cards'][number]['source'], string> = {
  purchase: 'Purchased',
  gift: 'Redeemed code',
  adjustment: 'Added by support',
};

export function BalancePanel() {
  const balance = useBalance();
  return (
    <Section title="Balance" id="balance"
      actions={<button type="button" className="secondary" onClick={() => void balance.reload()}
        disabled={balance.status === 'loading'}>Refresh</button>}>
      <Loaded request={balance} label="Loading your balance…">
        {(data) => <BalanceDetails balance={data} />}
      </Loaded>
    </Section>
  );
}

function BalanceDetails({ balance }: { balance: BalanceView }) {
  const packageName = usePackageName();
  // A postpaid plan that pays (active) has no use for the prepaid warnings: cards only come first.
  const usage = usePlan().usage.data;
  const paysOnPlan = usage?.billing === 'postpaid' && usage.status === 'active';
  if (balance.total_seconds <= 0 && paysOnPlan) {
    return <p className="muted">No prepaid time cards. Your calls are billed on <a href="#period">your plan</a>; time cards you buy or redeem are used first.</p>;
  }
  if (balance.total_seconds <= 0) {
    return (
      <div className="banner-warn" role="status">
        <p className="big">No time left</p>
        <p>To talk to MindBot, <a href="#buy">buy a time card</a> or <a href="#redeem">redeem an activation code</a>.</p>
      </div>
    );
  }
  return (
    <>
      {balance.total_seconds < LOW_BALANCE_SECONDS && !paysOnPlan && (
        <p className="banner-warn" role="status">
          Less than 30 minutes left. <a href="#buy">Buy more time</a> or <a href="#redeem">redeem a code</a> so a
          call is not cut short.
        </p>
      )}
      <div className="stats">
        <div className="stat">
          <div className="value">{formatDuration(balance.total_seconds)}</div>
          <div className="label">Time left</div>
        </div>
        <div className="stat">
          <div className="value">{balance.card_count}</div>
          <div className="label">{balance.card_count === 1 ? 'Time card' : 'Time cards'}</div>
        </div>
        <div className="stat">
          <div className="value">{formatDate(balance.next_expiry)}</div>
          <div className="label">Next expiry</div>
        </div>
      </div>
      <TableScroll label="Your time cards">
        <table>
          <caption className="visually-hidden">Your time cards, the one used first at the top</caption>
          <thead>
            <tr><th scope="col">Card</th><th scope="col" className="num">Left</th><th scope="col">Expires</th></tr>
          </thead>
          <tbody>
            {balance.cards.map((card, index) => {
              // The server lists cards in the order calls use them: the first expires next.
              const next = index === 0;
              return (
                <tr key={card.card_id} className={next ? 'highlight' : undefined}>
                  <td>{SOURCE_LABEL[card.source]}{card.package_id && <span className="muted"> · {packageName(card.package_id)}</span>}</td>
                  <td className="num">{formatDuration(card.remaining_seconds)}
                    <span className="muted"> of {formatDuration(card.total_seconds)}</span></td>
                  <td>{formatDate(card.expires_at)}{next && <strong> · expires next</strong>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableScroll>
    </>
  );
}
