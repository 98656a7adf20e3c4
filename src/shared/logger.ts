import { pino, type Logger } from 'pino';
import { config } from './config.ts';

// Secrets never reach a log line, whatever object a caller hands the logger.
const redact = {
  paths: [
    '*.password', '*.secret', '*.token', '*.apiKey', '*.serviceRoleKey', '*.authorization',
    'req.headers.authorization', 'req.headers["stripe-signature"]', 'connectionString',
  ],
  censor: '[redacted]',
};

let root: Logger | undefined;

export function logger(): Logger {
  root ??= pino({ level: config().LOG_LEVEL, base: { service: 'mindbot' }, redact });
  return root;
}

/** A URL safe to log: the password is dropped. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
