// The sidecar process: `./launch.sh dev` and `./launch.sh start` run it next to the agent worker.
import { readFileSync } from 'node:fs';
import { config, type Config } from '../config.ts';
import { logger } from '../logger.ts';
import { createTokenVerifier, localSigningSecret } from '../auth/verify-token.ts';
import { openBillingStore } from '../billing/open-store.ts';
import { buildSidecar } from './app.ts';
import type { WebAuth } from './web-app.ts';
import { createStripeClient } from './stripe-client.ts';
import { startBackgroundJobs, type RunningJobs } from './jobs.ts';

const log = logger().child({ component: 'sidecar' });

/** Supabase Auth when configured; else the development sign-in when DEV_SIGN_IN is on (config refuses both). */
function webAuth(cfg: Config): WebAuth {
  if (cfg.SUPABASE_URL && cfg.SUPABASE_ANON_KEY) {
    return { mode: 'supabase', supabaseUrl: cfg.SUPABASE_URL, anonKey: cfg.SUPABASE_ANON_KEY };
  }
  if (cfg.DEV_SIGN_IN) return { mode: 'local', signingSecret: localSigningSecret(cfg) };
  return { mode: 'none', reason: 'sign-in is not configured: set SUPABASE_URL and SUPABASE_ANON_KEY' };
}

async function main(): Promise<void> {
  const cfg = config();
  const verifier = createTokenVerifier(cfg);
  if (cfg.DEV_SIGN_IN) {
    log.warn({ devSignIn: true }, `DEVELOPMENT SIGN-IN IS ON (DEV_SIGN_IN=true): anyone on this machine can sign in as any user, `
      + `admin included, at POST /auth/dev-sign-in; never run it with real users or data (./launch.sh start leaves it off)`);
  }
  if (verifier.usesDevSecret) log.warn('JWT_SECRET is not set: accepting tokens signed with the public development secret');
  const opened = await openBillingStore(cfg, { log });
  const stripe = createStripeClient(cfg);
  if (!stripe) log.warn('STRIPE_SECRET_KEY is not set: purchases answer 503');
  if (!cfg.STRIPE_WEBHOOK_SECRET) log.warn('STRIPE_WEBHOOK_SECRET is not set: webhooks answer 503');
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const app = await buildSidecar({
    store: opened.store,
    sql: opened.sql,
    stripe,
    webhookSecret: cfg.STRIPE_WEBHOOK_SECRET,
    verifier,
    log,
    successUrl: cfg.CHECKOUT_SUCCESS_URL ?? `${cfg.PUBLIC_BASE_URL}/purchase/success?session_id={CHECKOUT_SESSION_ID}`,
    cancelUrl: cfg.CHECKOUT_CANCEL_URL ?? `${cfg.PUBLIC_BASE_URL}/purchase/cancel`,
    corsOrigins: cfg.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    version,
    metricsToken: cfg.METRICS_TOKEN,
    livekit: cfg.LIVEKIT_URL && cfg.LIVEKIT_API_KEY && cfg.LIVEKIT_API_SECRET
      ? { url: cfg.LIVEKIT_URL, apiKey: cfg.LIVEKIT_API_KEY, apiSecret: cfg.LIVEKIT_API_SECRET, ttlSeconds: cfg.LIVEKIT_TOKEN_TTL_SECONDS }
      : undefined,
    web: {
      distDir: cfg.WEB_DIST_DIR,
      auth: webAuth(cfg),
      livekitUrl: cfg.LIVEKIT_URL,
      purchasesEnabled: stripe !== null,
      version,
    },
  });
  await app.listen({ host: cfg.HOST, port: cfg.PORT });
  log.info({ storage: opened.description, keySources: verifier.keySources }, 'sidecar ready');
  let jobs: RunningJobs | null = null;
  if (cfg.JOBS_ENABLED) {
    if (!cfg.NOTIFY_WEBHOOK_URL) log.warn('NOTIFY_WEBHOOK_URL is not set: notifications stay in the outbox');
    jobs = startBackgroundJobs(opened.store, log.child({ component: 'jobs' }), {
      expireEverySeconds: cfg.EXPIRE_EVERY_SECONDS,
      reapEverySeconds: cfg.REAP_EVERY_SECONDS,
      maxSilenceSeconds: cfg.SESSION_MAX_SILENCE_SECONDS,
      notifyEverySeconds: cfg.NOTIFY_EVERY_SECONDS,
      lowBalanceSeconds: cfg.LOW_BALANCE_SECONDS,
      delivery: cfg.NOTIFY_WEBHOOK_URL ? { url: cfg.NOTIFY_WEBHOOK_URL, secret: cfg.NOTIFY_WEBHOOK_SECRET } : null,
      meterEvents: stripe && {
        stripe,
        everySeconds: cfg.METER_EVENTS_EVERY_SECONDS,
        sender: { batchSize: cfg.METER_EVENTS_BATCH_SIZE, concurrency: cfg.METER_EVENTS_CONCURRENCY,
          leaseSeconds: cfg.METER_EVENTS_LEASE_SECONDS, timeoutMs: cfg.METER_EVENTS_TIMEOUT_MS },
        reconcileEverySeconds: cfg.METER_RECONCILE_EVERY_SECONDS,
        settleSeconds: cfg.METER_RECONCILE_SETTLE_SECONDS,
      },
    });
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, timeoutMs: cfg.SHUTDOWN_TIMEOUT_MS }, 'stopping the sidecar');
    // Every store call has its deadline, but a shutdown must not trust that: whatever still runs after
    // SHUTDOWN_TIMEOUT_MS (a job, a request, a goodbye to a frozen database) is abandoned.
    setTimeout(() => {
      log.error({ signal, timeoutMs: cfg.SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out: abandoning the work still running');
      process.exit(1);
    }, cfg.SHUTDOWN_TIMEOUT_MS).unref();
    try {
      await Promise.all([jobs?.stop(), app.close()]);
      await opened.close();
    } catch (error) {
      log.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  log.fatal({ err: error }, 'sidecar failed to start');
  process.exit(1);
});
