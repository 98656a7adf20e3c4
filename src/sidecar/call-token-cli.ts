// `./launch.sh token <user-id>`: a room name and a LiveKit token for trying a call by hand, minted exactly as
// POST /token mints them (the user needs time on their balance).
import { config } from '../shared/config.ts';
import { isUuid } from '../auth/verify-token.ts';
import { openBillingStore } from '../billing/open-store.ts';
import { mintCallToken, roomNameFor } from './livekit-token.ts';

async function main(): Promise<number> {
  const userId = process.argv[2] ?? '';
  if (!isUuid(userId)) {
    process.stderr.write('usage: ./launch.sh token <user-uuid>\n');
    return 2;
  }
  const cfg = config();
  const missing = (['LIVEKIT_URL', 'LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET'] as const).filter((name) => !cfg[name]);
  if (missing.length > 0) {
    process.stderr.write(`cannot mint a call token: ${missing.join(', ')} not set\n`);
    return 1;
  }
  const opened = await openBillingStore(cfg);
  try {
    const token = await mintCallToken(opened.store, {
      url: cfg.LIVEKIT_URL!, apiKey: cfg.LIVEKIT_API_KEY!, apiSecret: cfg.LIVEKIT_API_SECRET!, ttlSeconds: cfg.LIVEKIT_TOKEN_TTL_SECONDS,
    }, userId.toLowerCase(), roomNameFor(userId.toLowerCase()));
    process.stdout.write(`${JSON.stringify(token, null, 2)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await opened.close();
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
