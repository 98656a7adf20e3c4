// The LiveKit worker without a LiveKit server: importing it starts nothing, ./launch.sh worker names the
// missing LiveKit variables, and the room's events reach the call as the call job expects them. The call
// itself is covered by tests/agent-call-job.test.ts; the AgentSession and JobContext glue has not run here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { DisconnectReason, RoomEvent, type Room } from '@livekit/rtc-node';
import { describe, it } from 'node:test';
import { callRoomEvents, noBalanceText, userIdOf } from '../src/agent/worker.ts';
import { refusedText } from '../src/agent/call-speech.ts';
import type { UsageCurrent } from '../src/billing/store.ts';
import { liveKitUnreachable } from '../src/agent/network-cause.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url);
/** Only what a process needs to run: no LiveKit, OpenAI, database or Stripe variable. */
const bareEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MINDBOT_SKIP_INSTALL: '1' };

describe('agent worker', () => {
  it('starts nothing and reads no key when imported', async () => {
    // The process exits by itself once the import is done: nothing was started that keeps it alive. (The bound
    // is only there so a hang fails the test; a loaded machine takes a while to load the agents framework.)
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      "const m = await import('./src/agent/worker.ts'); console.log(typeof m.default.entry, m.AGENT_NAME, m.serverOptions({ AGENT_HEALTH_PORT: 9999 }).port)"],
    { cwd: root, env: bareEnv, timeout: 180_000 });
    assert.equal(stdout.trim(), 'function mindbot 9999');
    assert.equal(stderr, '');
  });

  it('tells a user uuid from a guest identity', () => {
    assert.equal(userIdOf('0F8FAD5B-D9CB-469F-A165-70867728950E'), '0f8fad5b-d9cb-469f-a165-70867728950e');
    assert.equal(userIdOf('guest-123'), null);
  });

  it('names the packages kindly when there is no balance', () => {
    const text = noBalanceText([{ name: 'Basic', base_seconds: 3600, bonus_seconds: 0, price_cents: 500, currency: 'usd' }], 60);
    assert.match(text, /no talk time left/);
    assert.match(text, /Basic/);
    assert.match(noBalanceText([], 0), /No packages are on sale/);
  });

  it("says why a start was refused in the plan's terms, and offers the packages each time", () => {
    const tiers = [{ name: 'Basic', base_seconds: 3600, bonus_seconds: 0, price_cents: 500, currency: 'usd' }];
    const period = (fields: Partial<UsageCurrent>) => ({ billing: 'postpaid', status: 'active', cap_cents: 5000, currency: 'usd', ...fields }) as UsageCurrent;
    assert.equal(refusedText(null, tiers, 0), noBalanceText(tiers, 0));
    assert.equal(refusedText(period({ billing: 'prepaid', cap_cents: null }), tiers, 0), noBalanceText(tiers, 0));
    assert.match(refusedText(period({ status: 'suspended' }), tiers, 60),
      /calls on your monthly plan are suspended because an invoice is unpaid\..*the Basic, 1 hour for 5 dollars.*I'll stay for 1 minute\.$/);
    assert.match(refusedText(period({}), tiers, 0), /you've reached your spending cap of 50 dollars for this billing period, so I can't start our call\..*the Basic/);
    assert.match(refusedText(period({ billing: 'prepaid', status: 'pending', cap_cents: null }), tiers, 0),
      /your monthly plan isn't confirmed yet and you have no talk time left on time cards/);
  });

  it("turns the caller's hang-up and the room going away into the call's events, not the agent's own leaving", () => {
    const room = new EventEmitter();
    let now = new Date('2026-03-02T10:00:00Z');
    const events = callRoomEvents(room as unknown as Room, 'caller-1', () => now);
    const seen: Array<[string, string]> = [];
    events.on('caller_left', (at) => seen.push(['caller_left', at.toISOString()]));
    events.on('room_closed', (at) => seen.push(['room_closed', at.toISOString()]));

    room.emit(RoomEvent.ParticipantDisconnected, { identity: 'someone-else' });
    room.emit(RoomEvent.ParticipantDisconnected, { identity: 'caller-1' });
    now = new Date('2026-03-02T10:00:05Z');
    room.emit(RoomEvent.Disconnected, DisconnectReason.CLIENT_INITIATED);
    room.emit(RoomEvent.Disconnected, DisconnectReason.ROOM_DELETED);

    assert.deepEqual(seen, [['caller_left', '2026-03-02T10:00:00.000Z'], ['room_closed', '2026-03-02T10:00:05.000Z']]);
  });

  // launch.sh reads ./.env: with LiveKit configured there, `worker` would really start one.
  const envFile = new URL('../.env', import.meta.url);
  const liveKitInDotEnv = existsSync(envFile) && /^LIVEKIT_(URL|API_SECRET)=\S/m.test(readFileSync(envFile, 'utf8'));
  it('./launch.sh worker whose LiveKit server cannot be reached names the URL and the cause in one line, exits 1', { skip: liveKitInDotEnv && '.env sets LiveKit variables' }, async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const url = `ws://127.0.0.1:${closed}`;
    const env = { ...bareEnv, LIVEKIT_URL: url, LIVEKIT_API_KEY: 'APIkey', LIVEKIT_API_SECRET: 'a-secret-of-enough-length' };
    const failed = await run('./launch.sh', ['worker'], { cwd: root, env, timeout: 60_000 })
      .then(() => assert.fail('an unreachable LiveKit server must fail the command'), (error: unknown) => error);
    const { code, stderr } = failed as { code: number; stderr: string };
    assert.equal(code, 1);
    assert.deepEqual(stderr.trim().split('\n'), [`worker: cannot reach the LiveKit server at ${url}: connection refused (ECONNREFUSED)`]);

    // And a server that answers (LiveKit answers HTTP on its root) passes the check.
    const answering = createServer((_request, response) => response.end('OK')).listen(0, '127.0.0.1');
    await once(answering, 'listening');
    try {
      assert.equal(await liveKitUnreachable(`ws://127.0.0.1:${(answering.address() as AddressInfo).port}`), null);
    } finally {
      answering.close();
    }
  });

  it('./launch.sh worker without LiveKit variables names them in one line and exits non-zero', { skip: liveKitInDotEnv && '.env sets LiveKit variables' }, async () => {
    const failed = await run('./launch.sh', ['worker'], { cwd: root, env: { ...bareEnv, LIVEKIT_API_KEY: 'k' }, timeout: 30_000 })
      .then(() => assert.fail('the worker cannot run without LiveKit: a script must see it failed'), (error: unknown) => error);
    const { code, stdout, stderr } = failed as { code: number; stdout: string; stderr: string };
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.deepEqual(stderr.trim().split('\n'),
      ['[launch] the agent worker needs a LiveKit server: LIVEKIT_URL LIVEKIT_API_SECRET not set (in .env or the environment)']);
  });
});
