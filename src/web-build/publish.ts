// Moves a finished build of the web app into the directory the sidecar serves, so a reader never sees a
// half-built app: `vite build --watch` empties its output directory and rewrites it file by file, which is why
// `./launch.sh dev` builds into a staging directory and publishes from there once a build is complete.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const PAGE = 'index.html';

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => statSync(join(dir, name)).isFile())
    .map((name) => relative(dir, join(dir, name)));
}

function sameBytes(a: string, b: string): boolean {
  if (!existsSync(b) || statSync(a).size !== statSync(b).size) return false;
  return readFileSync(a).equals(readFileSync(b));
}

/** Copy, then rename over: a reader of `to` sees the old file or the new one, never a partial one. */
function replaceAtomically(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  const temporary = join(dirname(to), `.publishing-${process.pid}-${Date.now()}`);
  copyFileSync(from, temporary);
  renameSync(temporary, to);
}

/**
 * Publishes the build in `stagingDir` into `targetDir`: the assets first, the page last, so a page is never
 * served before what it loads. Files of the previous publish are kept (a page loaded a moment ago still finds
 * its assets); older ones are removed. Returns this publish's files, to pass as `previous` next time.
 */
export function publishBuild(stagingDir: string, targetDir: string, previous: ReadonlySet<string> = new Set()): Set<string> {
  const files = filesUnder(stagingDir);
  if (!files.includes(PAGE)) throw new Error(`no ${PAGE} in ${stagingDir}: the build did not finish`);
  for (const file of files) {
    if (file === PAGE) continue;
    if (!sameBytes(join(stagingDir, file), join(targetDir, file))) replaceAtomically(join(stagingDir, file), join(targetDir, file));
  }
  replaceAtomically(join(stagingDir, PAGE), join(targetDir, PAGE));
  const published = new Set(files);
  for (const file of filesUnder(targetDir)) {
    if (!published.has(file) && !previous.has(file)) rmSync(join(targetDir, file), { force: true });
  }
  return published;
}
