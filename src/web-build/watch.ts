// `./launch.sh dev`'s web build: rebuilds src/web on every change into a staging directory and publishes each
// complete build into WEB_DIST_DIR (see publish.ts), so the sidecar never serves a half-built app.
// --ready-file PATH: written once the first build is published (or failed), for the launcher to wait on.
import { rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { publishBuild } from './publish.ts';

const log = logger().child({ component: 'web-build' });

interface WatchEvent {
  code: string;
  error?: unknown;
  result?: { close(): Promise<void> | void };
}
interface Watcher {
  on(event: 'event', listener: (event: WatchEvent) => void): void;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const readyIndex = process.argv.indexOf('--ready-file');
  const readyFile = readyIndex > 0 ? process.argv[readyIndex + 1] : undefined;
  const target = resolve(config().WEB_DIST_DIR);
  const staging = `${target}.staging`;
  rmSync(staging, { recursive: true, force: true });
  const watcher = await build({
    configFile: fileURLToPath(new URL('../../vite.config.ts', import.meta.url)),
    logLevel: 'warn',
    build: { outDir: staging, emptyOutDir: true, watch: {} },
  }) as unknown as Watcher;

  let previous = new Set<string>();
  let first = true;
  const settled = (outcome: 'built' | 'failed') => {
    if (!first) return;
    first = false;
    if (readyFile) writeFileSync(readyFile, outcome);
  };
  watcher.on('event', (event) => {
    if (event.code === 'BUNDLE_END') void event.result?.close();
    if (event.code === 'END') {
      try {
        previous = publishBuild(staging, target, previous);
        log.info({ dir: target }, 'web app built');
        settled('built');
      } catch (error) {
        log.error({ err: error }, 'the web app build could not be published');
        settled('failed');
      }
    }
    if (event.code === 'ERROR') {
      // A typo in src/web: say so in one line and keep serving the last good build until the next save.
      log.error({ error: event.error instanceof Error ? event.error.message : String(event.error) }, 'the web app does not build');
      settled('failed');
    }
  });

  // Nothing to save: a build cut short only leaves the staging directory, which the next start empties.
  // (Closing the watcher first takes seconds.)
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping the web build');
    process.exit(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  log.fatal({ err: error }, 'the web build failed to start');
  process.exit(1);
});
