// The rooms of src/ and the one way their arrows point (/work/shared/ARCHITECTURE.md, "Rooms and arrows").
//
//   web-build   the edge: `dev`'s web build, an entry point nothing imports
//   web         the React app: imports src/shared only (and its own folder, and npm packages)
//   agent       the worker: call job, controller, console
//   tools       the agent's function tools
//   sidecar     Fastify routes and background jobs
//   auth        token verification: used by the sidecar (and its CLI), needs nothing above shared, so it sits
//               just below the sidecar and above payments
//   payments    Stripe as a domain, domain errors only
//   billing     the store port and its adapters
//   shared      what several rooms speak (call protocol, spoken durations, activation-code format, API
//               contracts, config, logger): imports nothing of ours
//
// A file may import its own folder and any folder below its own, never one above. A folder not in this list
// fails the test until someone places it: a new room is a design decision, not an accident.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Top to bottom; an import may only point down (or sideways within one folder). */
export const ROOMS = ['web-build', 'web', 'agent', 'tools', 'sidecar', 'auth', 'payments', 'billing', 'shared'] as const;

/** One import as written: the importing file and the target, both relative to src/ ('agent/worker.ts'). */
export interface ImportEdge {
  from: string;
  /** The resolved target relative to src/ (may start with '../' when it leaves src/), or null for a package. */
  to: string | null;
  specifier: string;
}

const roomOf = (path: string): string | null => {
  if (path.startsWith('..')) return null;
  const first = path.split('/')[0]!;
  return path.includes('/') ? first : null;
};

/** Every edge that breaks the rule, as a readable line. Pure, so the checker itself is tested below. */
export function boundaryViolations(edges: readonly ImportEdge[]): string[] {
  const rank = (room: string) => (ROOMS as readonly string[]).indexOf(room);
  const out: string[] = [];
  for (const edge of edges) {
    const fromRoom = roomOf(edge.from);
    if (fromRoom === null || rank(fromRoom) < 0) {
      out.push(`${edge.from}: not in a known folder (place ${fromRoom ?? 'it'} in ROOMS)`);
      continue;
    }
    if (edge.to === null) continue; // an npm package or a node: builtin
    const toRoom = roomOf(edge.to);
    if (toRoom === null) {
      out.push(`${edge.from} imports ${edge.specifier}: outside the rooms of src/`);
      continue;
    }
    if (rank(toRoom) < 0) {
      out.push(`${edge.from} imports ${edge.specifier}: ${toRoom} is not in a known folder (place it in ROOMS)`);
      continue;
    }
    if (toRoom === fromRoom) continue;
    if (fromRoom === 'web' && toRoom !== 'shared') {
      out.push(`${edge.from} imports ${edge.specifier}: the web app may import only src/shared`);
    } else if (rank(toRoom) < rank(fromRoom)) {
      out.push(`${edge.from} imports ${edge.specifier}: ${fromRoom} may not import ${toRoom}, which is above it`);
    }
  }
  return out;
}

const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|tsx|mts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const posix = (path: string) => path.split(sep).join('/');

/** Static imports, re-exports, `import type`, side-effect imports and dynamic import('…') of one file. */
export function importsOf(file: string, text: string): { edges: ImportEdge[]; unresolvable: string[] } {
  const from = posix(relative(srcDir, file));
  const info = ts.preProcessFile(text, true, true);
  const edges = info.importedFiles.map(({ fileName }) => ({
    from,
    specifier: fileName,
    to: fileName.startsWith('.') ? posix(relative(srcDir, resolve(dirname(file), fileName))) : null,
  }));
  // A computed dynamic import cannot be checked, so it is not allowed to hide an arrow pointing up.
  const unresolvable = [...text.matchAll(/\bimport\(\s*(?!['"`])/g)].map(() => `${from}: import() with a computed path`);
  return { edges, unresolvable };
}

describe('import boundaries', () => {
  it('no folder of src/ imports a folder above it, and the web app imports only src/shared', () => {
    const files = sourceFiles(srcDir);
    assert.ok(files.length > 50, `expected the whole of src/, found ${files.length} files`);
    const edges: ImportEdge[] = [];
    const problems: string[] = [];
    for (const file of files) {
      const found = importsOf(file, readFileSync(file, 'utf8'));
      edges.push(...found.edges);
      problems.push(...found.unresolvable);
    }
    // The scan really sees the arrows it is meant to judge (static, type-only and dynamic).
    assert.ok(edges.some((e) => e.from === 'agent/worker.ts' && e.to === 'shared/logger.ts'), 'dynamic import seen');
    assert.ok(edges.some((e) => e.from.startsWith('web/') && e.to?.startsWith('shared/')), 'web → shared seen');
    problems.push(...boundaryViolations(edges));
    assert.deepEqual(problems, []);
  });

  it('the checker fails an arrow pointing up, a web import of anything but shared, and an unplaced folder', () => {
    const edge = (from: string, to: string | null, specifier = to ?? 'pkg'): ImportEdge => ({ from, to, specifier });
    assert.deepEqual(boundaryViolations([
      edge('agent/worker.ts', 'tools/index.ts'),
      edge('tools/start.ts', 'payments/purchases.ts'),
      edge('sidecar/app.ts', 'auth/verify-token.ts'),
      edge('payments/refunds.ts', 'billing/store.ts'),
      edge('billing/store.ts', 'shared/config.ts'),
      edge('web/api.ts', 'shared/api-contracts.ts'),
      edge('web/api.ts', 'web/format.ts'),
      edge('web/main.tsx', null, 'react'),
      edge('web-build/watch.ts', 'shared/logger.ts'),
    ]), []);
    assert.deepEqual(boundaryViolations([
      edge('tools/deps.ts', 'agent/call-controller.ts', '../agent/call-controller.ts'),
      edge('payments/purchases.ts', 'sidecar/http-errors.ts', '../sidecar/http-errors.ts'),
      edge('shared/config.ts', 'billing/store.ts', '../billing/store.ts'),
      edge('web/caller/CopyCode.tsx', 'billing/activation-code.ts', '../../billing/activation-code.ts'),
      edge('web/talk/state.ts', 'agent/call-protocol.ts', '../../agent/call-protocol.ts'),
      edge('billing/x.ts', 'web/api.ts', '../web/api.ts'),
      edge('jobs/run.ts', 'shared/config.ts', '../shared/config.ts'),
      edge('sidecar/app.ts', 'jobs/run.ts', '../jobs/run.ts'),
      edge('sidecar/app.ts', '../tests/helpers/x.ts', '../../tests/helpers/x.ts'),
    ]), [
      'tools/deps.ts imports ../agent/call-controller.ts: tools may not import agent, which is above it',
      'payments/purchases.ts imports ../sidecar/http-errors.ts: payments may not import sidecar, which is above it',
      'shared/config.ts imports ../billing/store.ts: shared may not import billing, which is above it',
      'web/caller/CopyCode.tsx imports ../../billing/activation-code.ts: the web app may import only src/shared',
      'web/talk/state.ts imports ../../agent/call-protocol.ts: the web app may import only src/shared',
      'billing/x.ts imports ../web/api.ts: billing may not import web, which is above it',
      'jobs/run.ts: not in a known folder (place jobs in ROOMS)',
      'sidecar/app.ts imports ../jobs/run.ts: jobs is not in a known folder (place it in ROOMS)',
      'sidecar/app.ts imports ../../tests/helpers/x.ts: outside the rooms of src/',
    ]);
  });

  it('the scanner reads type-only, re-exported, side-effect and dynamic imports, and refuses computed ones', () => {
    const file = join(srcDir, 'tools', 'example.ts');
    const { edges, unresolvable } = importsOf(file, [
      "import type { CallPhase } from '../agent/call-controller.ts';",
      "export { startPurchase } from '../sidecar/purchases.ts';",
      "import '../web/styles.ts';",
      "const { logger } = await import('../shared/logger.ts');",
      'const mod = await import(name);',
      "import { z } from 'zod';",
    ].join('\n'));
    assert.deepEqual(edges.map((e) => e.to),
      ['agent/call-controller.ts', 'sidecar/purchases.ts', 'web/styles.ts', 'shared/logger.ts', null]);
    assert.deepEqual(unresolvable, ['tools/example.ts: import() with a computed path']);
    assert.deepEqual(boundaryViolations(edges), [
      'tools/example.ts imports ../agent/call-controller.ts: tools may not import agent, which is above it',
      'tools/example.ts imports ../web/styles.ts: tools may not import web, which is above it',
    ]);
  });
});
