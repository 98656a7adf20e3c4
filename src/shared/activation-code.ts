// Activation codes as people type them. The database generates codes (billing_private.new_activation_code);
// this module only reads them, so a client can tell a typo from an unknown code without asking the database.
// It must agree with billing_private.parse_activation_code; tests/activation-code.test.ts checks both ways.

export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const CODE_LENGTH = 12;

export type ParsedCode =
  | { ok: true; code: string; display: string }
  | { ok: false; error: 'malformed_code' | 'mistyped_code'; message: string };

/** The check symbol for the first 11 symbols: a weighted sum modulo 31, a prime. */
export function checkSymbol(body: string): string {
  let sum = 0;
  for (let i = 0; i < CODE_LENGTH - 1; i++) {
    sum += (i + 1) * CODE_ALPHABET.indexOf(body.charAt(i));
  }
  return CODE_ALPHABET.charAt(sum % CODE_ALPHABET.length);
}

/** Upper-cases and drops spaces and dashes: "abcd-efgh jk23" and "ABCDEFGHJK23" are the same code. */
export function normalizeCode(input: string): string {
  return input.replace(/[\s-]/g, '').toUpperCase();
}

export function formatCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}`;
}

const SHAPE = new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`);

export function parseActivationCode(input: string): ParsedCode {
  const code = normalizeCode(input);
  if (!SHAPE.test(code)) {
    return {
      ok: false,
      error: 'malformed_code',
      message: 'an activation code has 12 letters and digits, like ABCD-EFGH-JK2V (no 0, O, 1, I or L)',
    };
  }
  if (code.charAt(CODE_LENGTH - 1) !== checkSymbol(code)) {
    return { ok: false, error: 'mistyped_code', message: 'this activation code has a typo: please check each character' };
  }
  return { ok: true, code, display: formatCode(code) };
}
