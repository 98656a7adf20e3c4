// `./launch.sh stripe-sync`: creates or updates Stripe's meter, products and prices from the plans in the
// configured database (src/payments/stripe-sync.ts), printing what it created and what it left. Twice is a no-op.
import { config } from '../shared/config.ts';
import { openBillingStore } from '../billing/open-store.ts';
import { createStripeClient } from './stripe-client.ts';
import { syncStripeCatalogue } from './stripe-sync.ts';

async function main(): Promise<number> {
  const cfg = config();
  const stripe = createStripeClient(cfg);
  if (!stripe) {
    process.stderr.write('stripe-sync needs STRIPE_SECRET_KEY\n');
    return 1;
  }
  const opened = await openBillingStore(cfg);
  try {
    const report = await syncStripeCatalogue(stripe, opened.store);
    for (const line of report.created) process.stdout.write(`created  ${line}\n`);
    for (const line of report.left) process.stdout.write(`left     ${line}\n`);
    process.stdout.write(`${report.created.length} created or changed, ${report.left.length} left as they were\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`stripe-sync failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await opened.close();
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
