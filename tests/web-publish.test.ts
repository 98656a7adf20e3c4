// Publishing a finished web build into the directory the sidecar serves (./launch.sh dev's rebuilds).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { publishBuild } from '../src/web-build/publish.ts';

const scratch = mkdtempSync(join(tmpdir(), 'mindbot-publish-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function stage(dir: string, build: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'assets', `app-${build}.js`), `console.log(${JSON.stringify(build)})`);
  writeFileSync(join(dir, 'assets', 'logo.svg'), '<svg/>');
  writeFileSync(join(dir, 'index.html'), `<html><script src="/assets/app-${build}.js"></script></html>`);
}

describe('publishing a web build', () => {
  it('puts the page and its assets in place, keeps the previous build\'s assets, drops older ones', () => {
    const staging = join(scratch, 'staging');
    const target = join(scratch, 'web');
    stage(staging, 'a');
    let published = publishBuild(staging, target);
    assert.match(readFileSync(join(target, 'index.html'), 'utf8'), /app-a\.js/);
    assert.ok(existsSync(join(target, 'assets', 'app-a.js')));

    stage(staging, 'b');
    published = publishBuild(staging, target, published);
    assert.match(readFileSync(join(target, 'index.html'), 'utf8'), /app-b\.js/);
    assert.ok(existsSync(join(target, 'assets', 'app-a.js')), 'a page loaded from the previous build still finds its assets');
    assert.ok(existsSync(join(target, 'assets', 'app-b.js')));

    stage(staging, 'c');
    publishBuild(staging, target, published);
    assert.ok(!existsSync(join(target, 'assets', 'app-a.js')), 'two builds ago is gone');
    assert.ok(existsSync(join(target, 'assets', 'app-b.js')));
    assert.ok(existsSync(join(target, 'assets', 'logo.svg')));
    assert.deepEqual(readdirSync(target, { recursive: true, encoding: 'utf8' }).sort(),
      ['assets', 'assets/app-b.js', 'assets/app-c.js', 'assets/logo.svg', 'index.html'], 'no temporary file left behind');
  });

  it('refuses a build without its page and leaves the served app as it was', () => {
    const staging = join(scratch, 'half');
    const target = join(scratch, 'served');
    stage(staging, 'good');
    publishBuild(staging, target);
    rmSync(join(staging, 'index.html'));
    writeFileSync(join(staging, 'assets', 'app-half.js'), 'x');
    assert.throws(() => publishBuild(staging, target), /no index\.html/);
    assert.match(readFileSync(join(target, 'index.html'), 'utf8'), /app-good\.js/);
    assert.ok(!existsSync(join(target, 'assets', 'app-half.js')));
  });
});
