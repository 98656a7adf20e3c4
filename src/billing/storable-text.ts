// Text PostgreSQL cannot store, found before it reaches SQL, so it is the caller's 4xx and not a database error.
// NUL (text and jsonb refuse it) and a UTF-16 half without its pair (it has no UTF-8 form: jsonb refuses its
// escape, text would silently get U+FFFD instead).
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Where in a parsed input (strings, arrays, objects, keys included) there is text PostgreSQL cannot store, as a
 * path like `metadata.note` ('' for the value itself); null when there is none. Walks without recursion: a body nested thousands deep
 * must not overflow the stack.
 */
export function unstorableTextAt(value: unknown): string | null {
  const pending: [unknown, string][] = [[value, '']];
  while (pending.length > 0) {
    const [item, path] = pending.pop()!;
    if (typeof item === 'string') {
      if (UNSTORABLE_TEXT.test(item)) return path;
    } else if (Array.isArray(item)) {
      item.forEach((element, i) => pending.push([element, path ? `${path}.${i}` : String(i)]));
    } else if (item !== null && typeof item === 'object') {
      for (const [key, element] of Object.entries(item)) {
        const at = path ? `${path}.${key}` : key;
        if (UNSTORABLE_TEXT.test(key)) return at;
        pending.push([element, at]);
      }
    }
  }
  return null;
}

const UNSTORABLE_TEXT_ALL = new RegExp(UNSTORABLE_TEXT.source, 'g');

/**
 * A copy with every piece of text PostgreSQL cannot store (in values and keys) replaced by U+FFFD. For input
 * that is not the caller's mistake and must not be lost over it: a signed Stripe event whose free text (a
 * customer's note, say) holds a NUL still records the payment. Recursive: only for input of bounded depth.
 */
export function withStorableText<T>(value: T): T {
  const copy = (item: unknown): unknown => {
    if (typeof item === 'string') return item.replace(UNSTORABLE_TEXT_ALL, '\ufffd');
    if (Array.isArray(item)) return item.map(copy);
    if (item !== null && typeof item === 'object') {
      return Object.fromEntries(Object.entries(item).map(([key, element]) => [copy(key) as string, copy(element)]));
    }
    return item;
  };
  return copy(value) as T;
}
