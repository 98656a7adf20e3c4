// SIGTERM forwarding with real processes: a parent that forwards, a forked child that handles SIGTERM, as the
// worker and its job processes are. No signal or process call is mocked.
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { childPids, childPidsFromStat, childPidsFromTasks } from '../src/agent/forward-signal.ts';

const root = new URL('..', import.meta.url);
const moduleUrl = new URL('../src/agent/forward-signal.ts', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'mindbot-signal-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A job process: ignores SIGTERM as the framework's do, except for its own handler, which records it. */
const childScript = join(dir, 'child.mjs');
writeFileSync(childScript, `
import { writeFileSync } from 'node:fs';
process.on('SIGTERM', () => {
  writeFileSync(process.argv[2], 'handled SIGTERM at ' + Date.now());
  process.exit(0);
});
setInterval(() => {}, 1000);
process.send('ready');
`);

/** The worker process: forwards SIGTERM, then (like drain) waits for its child to exit before exiting. */
const parentScript = join(dir, 'parent.mjs');
writeFileSync(parentScript, `
import { fork } from 'node:child_process';
const { forwardSignalToChildren } = await import(${JSON.stringify(moduleUrl)});
forwardSignalToChildren('SIGTERM', (pids) => console.log('forwarded to ' + pids.join(',')));
const child = fork(${JSON.stringify(childScript)}, [process.argv[2]]);
child.on('message', () => console.log('child ready ' + child.pid));
child.on('exit', (code) => { console.log('child exited ' + code); process.exit(0); });
setTimeout(() => { console.log('timed out'); process.exit(2); }, 20000);
`);

function lines(proc: ChildProcess): { wait(pattern: RegExp): Promise<RegExpMatchArray>; text(): string } {
  let out = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.on('data', (chunk) => { out += String(chunk); for (const w of waiters.splice(0)) w(); });
  return {
    text: () => out,
    async wait(pattern) {
      for (;;) {
        const match = out.match(pattern);
        if (match) return match;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('forwarding SIGTERM to child processes', () => {
  it('finds this process\'s children in /proc, both ways', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    await once(child, 'spawn');
    try {
      assert.ok(childPids().includes(child.pid!));
      assert.ok(childPidsFromStat(process.pid).includes(child.pid!));
      if (existsSync(`/proc/${process.pid}/task/${process.pid}/children`)) {
        assert.ok(childPidsFromTasks(process.pid).includes(child.pid!));
      }
      assert.ok(!childPidsFromStat(child.pid!).includes(process.pid));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a SIGTERM to the parent runs the forked child\'s SIGTERM handler', async () => {
    const marker = join(dir, 'handled.txt');
    const parent = spawn(process.execPath, ['--import', 'tsx', parentScript, marker], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const out = lines(parent);
    const childPid = Number((await out.wait(/child ready (\d+)/))[1]);
    assert.equal(existsSync(marker), false);

    parent.kill('SIGTERM');
    const [code] = await once(parent, 'exit');

    assert.equal(code, 0, out.text());
    assert.match(out.text(), new RegExp(`forwarded to (\\d+,)*${childPid}\\b`));
    assert.match(out.text(), /child exited 0/);
    assert.match(readFileSync(marker, 'utf8'), /^handled SIGTERM/);
    assert.equal(alive(childPid), false);
  });

  it('without forwarding, the child never hears of it (what the hook is for)', async () => {
    const marker = join(dir, 'unhandled.txt');
    const plain = join(dir, 'plain-parent.mjs');
    writeFileSync(plain, readFileSync(parentScript, 'utf8').replace(/^forwardSignalToChildren.*$/m,
      "process.once('SIGTERM', () => console.log('parent got SIGTERM'));"));
    const parent = spawn(process.execPath, ['--import', 'tsx', plain, marker], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const out = lines(parent);
    const childPid = Number((await out.wait(/child ready (\d+)/))[1]);
    parent.kill('SIGTERM');
    await out.wait(/parent got SIGTERM/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(existsSync(marker), false);
    assert.equal(alive(childPid), true);
    process.kill(childPid, 'SIGKILL');
    await once(parent, 'exit');
  });
});
