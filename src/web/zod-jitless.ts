// Imported first by main.tsx, before any schema exists: zod (4.x) probes `new Function` when it builds its first
// object schema, and the page's content security policy (script-src 'self', no 'unsafe-eval') reports that
// probe as a violation even though zod catches it. jitless skips the probe; parsing works the same without it.
import { z } from 'zod';

z.config({ jitless: true });
