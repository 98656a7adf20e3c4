// Imported first by main.tsx, before any contract is built: zod would otherwise probe `new Function` when the
// first object schema is made (to compile fast parsers), which the page's content security policy (script-src
// 'self', no 'unsafe-eval') blocks and reports as a violation. Parsing without compiled parsers is the same parse.
import { z } from 'zod';

z.config({ jitless: true });
