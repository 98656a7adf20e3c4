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
