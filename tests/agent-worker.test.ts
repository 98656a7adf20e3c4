// The LiveKit worker without a LiveKit server: importing it starts nothing, ./launch.sh worker names the
// missing LiveKit variables, and the room's events reach the call as the call job expects them. The call
// itself is covered by tests/agent-call-job.test.ts; the AgentSession and JobContext glue has not run here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { promisify } from 'node:util';
import { DisconnectReason, RoomEvent, type Room } from '@livekit/rtc-node';
import { describe, it } from 'node:test';
import { callRoomEvents, noBalanceText, userIdOf } from '../src/agent/worker.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url);
/** Only what a process needs to run: no LiveKit, OpenAI, database or Stripe variable. */
const bareEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MINDBOT_SKIP_INSTALL: '1' };

describe('agent worker', () => {
  it('starts nothing and reads no key when imported', async () => {
    const started = Date.now();
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      "const m = await import('./src/agent/worker.ts'); console.log(typeof m.default.entry, m.AGENT_NAME, m.serverOptions({ AGENT_HEALTH_PORT: 9999 }).port)"],
    { cwd: root, env: bareEnv, timeout: 30_000 });
    assert.equal(stdout.trim(), 'function mindbot 9999');
    assert.equal(stderr, '');
    assert.ok(Date.now() - started < 30_000);
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
