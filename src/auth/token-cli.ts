// Prints a local access token for trying the sidecar's API by hand:
//   node --import tsx src/auth/token-cli.ts <user-uuid> [--admin] [--ttl 3600] [--email a@b.c]
// Signed (HS256) with JWT_SECRET, or outside production with no key configured, the dev-only secret.
// stdout is the token alone (TOKEN=$(...) works); notes go to stderr. Exit 2: bad usage; exit 1: no secret or
// an invalid environment.
import { parseArgs } from 'node:util';
import { parseConfig } from '../shared/config.ts';
import { DEV_ONLY_JWT_SECRET, isUuid, localSigningSecret, signLocalToken } from './verify-token.ts';

const USAGE = 'usage: node --import tsx src/auth/token-cli.ts <user-uuid> [--admin] [--ttl <seconds>] [--email <address>]';
const MAX_TTL_SECONDS = 30 * 86400;

class UsageError extends Error {}

function usageError(message: string): never {
  throw new UsageError(message);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        admin: { type: 'boolean', default: false },
        ttl: { type: 'string', default: '3600' },
        email: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1) usageError('expected exactly one user id');
  const userId = positionals[0]!;
  if (!isUuid(userId)) usageError(`user id ${JSON.stringify(userId.slice(0, 64))} is not a uuid (e.g. 6f1c2a9e-5b0d-4c8e-9a3f-2d7b1e4c5a60)`);
  const ttl = Number(values.ttl);
  if (!/^\d+$/.test(values.ttl) || !Number.isSafeInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS) {
    usageError(`--ttl must be a whole number of seconds between 1 and ${MAX_TTL_SECONDS}`);
  }

  const config = parseConfig();
  const secret = localSigningSecret(config);

  const token = await signLocalToken({
    userId,
    admin: values.admin,
    expiresInSeconds: ttl,
    ...(values.email === undefined ? {} : { email: values.email }),
    ...(config.JWT_ISSUER === undefined ? {} : { issuer: config.JWT_ISSUER }),
  }, secret);
  const expires = new Date(Date.now() + ttl * 1000).toISOString();
  const signedWith = secret === DEV_ONLY_JWT_SECRET ? 'the dev-only secret (JWT_SECRET unset)' : 'JWT_SECRET';
  process.stderr.write(`token-cli: ${values.admin ? 'admin ' : ''}token for ${userId.toLowerCase()}, signed with ${signedWith}, expires ${expires}\n`);
  process.stdout.write(`${token}\n`);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`token-cli: ${error.message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else {
    // ConfigError (invalid environment, no JWT_SECRET) and anything unexpected.
    process.stderr.write(`token-cli: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
});
