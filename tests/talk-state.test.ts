// The talk screen's state machine, driven by the sequences of events a LiveKit room and POST /token produce.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callAttributes, CALL_ATTRIBUTES } from '../src/shared/call-protocol.ts';
import {
  canStartCall, initialTalkState, NO_BALANCE_MESSAGE, talkReducer, timeLeftAnnouncement, timeLeftSeconds, timeWarning,
  type TalkEvent, type TalkState,
} from '../src/web/talk/talk-state.ts';

const run = (events: TalkEvent[], from: TalkState = initialTalkState(true)) => events.reduce(talkReducer, from);
const joined: TalkEvent[] = [{ type: 'requested' }, { type: 'connecting' }, { type: 'connected' }];
const meter = (remainingSeconds: number, meteredAt: string, receivedAtMs: number): TalkEvent => ({
  type: 'attributes', receivedAtMs,
  record: callAttributes({ state: 'active', remainingSeconds, meteredAt: new Date(meteredAt), sessionId: 'sess-1' }),
});

describe('talk state: starting a call', () => {
  it('goes from the button to requesting, connecting and in call', () => {
    assert.deepEqual(run([{ type: 'requested' }]), { kind: 'requesting' });
    assert.deepEqual(run([{ type: 'requested' }, { type: 'connecting' }]), { kind: 'connecting' });
    assert.deepEqual(run(joined), {
      kind: 'in_call', agentState: 'unknown', callState: null, meter: null, purchaseLink: null, sessionId: null,
    });
  });

  it('shows calls as unavailable from the start when the server has no LiveKit', () => {
    const state = initialTalkState(false);
    assert.equal(state.kind, 'unavailable');
    assert.equal(canStartCall(state), false);
    assert.equal(talkReducer(state, { type: 'requested' }), state);
  });

  it('reads a 402 as no time left, a 503 as calls unavailable, anything else as a failure with its message', () => {
    const refused = (status: number, message: string) =>
      run([{ type: 'requested' }, { type: 'token_refused', status, code: 'x', message }]);
    assert.deepEqual(refused(402, 'no conversation time left'), { kind: 'no_balance', message: NO_BALANCE_MESSAGE, purchaseLink: null });
    const unavailable = refused(503, 'calls are not configured: set LIVEKIT_URL');
    assert.equal(unavailable.kind, 'unavailable');
    assert.match(unavailable.kind === 'unavailable' ? unavailable.message : '', /calls are not configured: set LIVEKIT_URL/);
    assert.deepEqual(refused(500, 'The server answered 500.'), { kind: 'failed', message: 'The server answered 500.' });
  });

  it('lets the caller try again after a failure, and not twice while a call is starting', () => {
    const failed = run([{ type: 'requested' }, { type: 'connecting' }, { type: 'error', message: 'Could not reach the call server.' }]);
    assert.deepEqual(failed, { kind: 'failed', message: 'Could not reach the call server.' });
    assert.deepEqual(talkReducer(failed, { type: 'requested' }), { kind: 'requesting' });
    const connecting = run([{ type: 'requested' }, { type: 'connecting' }]);
    assert.equal(talkReducer(connecting, { type: 'requested' }), connecting);
  });

  it('goes back to the button when the caller cancels before the call started', () => {
    assert.deepEqual(run([{ type: 'requested' }, { type: 'connecting' }, { type: 'cancelled' }]), { kind: 'idle' });
    const inCall = run(joined);
    assert.equal(talkReducer(inCall, { type: 'cancelled' }), inCall);
  });

  it('treats a room that closes before the call started as a failure', () => {
    assert.equal(run([{ type: 'requested' }, { type: 'connecting' }, { type: 'disconnected', reason: 'connection_lost' }]).kind, 'failed');
  });
});

describe('talk state: the countdown follows the meter', () => {
  it('counts down from the answer, re-anchors at the next one, and warns at 5 minutes and the last minute', () => {
    const t0 = 1_000_000;
    let state = run([...joined, { type: 'agent_state', state: 'speaking' }, meter(400, '2026-01-01T10:00:00Z', t0)]);
    assert.equal(state.kind === 'in_call' && state.agentState, 'speaking');
    assert.equal(state.kind === 'in_call' && state.sessionId, 'sess-1');
    assert.equal(timeLeftSeconds(state, t0), 400);
    assert.equal(timeLeftSeconds(state, t0 + 999), 400);
    assert.equal(timeLeftSeconds(state, t0 + 1_000), 399);
    assert.equal(timeLeftSeconds(state, t0 + 99_500), 301);
    assert.equal(timeWarning(timeLeftSeconds(state, t0 + 99_500)), 'none');
    assert.equal(timeWarning(timeLeftSeconds(state, t0 + 100_000)), 'low');

    // The next meter answer says 290 s at t0 + 120 s (the browser's clock would have said 280): the meter wins.
    state = talkReducer(state, meter(290, '2026-01-01T10:02:00Z', t0 + 120_000));
    assert.equal(timeLeftSeconds(state, t0 + 120_000), 290);
    assert.equal(timeLeftSeconds(state, t0 + 150_000), 260);
    assert.equal(timeWarning(timeLeftSeconds(state, t0 + 150_000)), 'low');

    state = talkReducer(state, meter(60, '2026-01-01T10:06:00Z', t0 + 360_000));
    assert.equal(timeWarning(timeLeftSeconds(state, t0 + 360_000)), 'last_minute');
    // Never below zero, however late the next answer is.
    assert.equal(timeLeftSeconds(state, t0 + 500_000), 0);
  });

  it('does not re-anchor when the same answer is seen again (another attribute changed)', () => {
    const t0 = 5_000;
    let state = run([...joined, meter(120, '2026-01-01T10:00:00Z', t0)]);
    state = talkReducer(state, meter(120, '2026-01-01T10:00:00Z', t0 + 30_000));
    assert.equal(timeLeftSeconds(state, t0 + 30_000), 90);
  });

  it('reads malformed time left as unknown, never as a wrong number', () => {
    const t0 = 0;
    const good = run([...joined, meter(600, '2026-01-01T10:00:00Z', t0)]);
    for (const remaining of ['-5', '12.5', 'abc', '', '1e3', '99999999999']) {
      const state = talkReducer(good, {
        type: 'attributes', receivedAtMs: t0 + 1_000,
        record: { [CALL_ATTRIBUTES.state]: 'active', [CALL_ATTRIBUTES.remainingSeconds]: remaining },
      });
      assert.equal(timeLeftSeconds(state, t0 + 1_000), null, `remaining_seconds ${JSON.stringify(remaining)}`);
      assert.equal(timeLeftAnnouncement(timeLeftSeconds(state, t0 + 1_000)), 'Time left: not known yet.');
    }
    const unknownState = talkReducer(good, { type: 'attributes', receivedAtMs: 0, record: { [CALL_ATTRIBUTES.state]: 'partying' } });
    assert.equal(unknownState.kind === 'in_call' && unknownState.callState, null);
    assert.equal(timeLeftSeconds(run(joined), 0), null);
  });

  it('announces whole minutes only, so a screen reader hears it at most once a minute', () => {
    assert.equal(timeLeftAnnouncement(3_599), 'About 59 minutes left.');
    assert.equal(timeLeftAnnouncement(3_540), 'About 59 minutes left.');
    assert.equal(timeLeftAnnouncement(119), 'About 1 minute left.');
    assert.equal(timeLeftAnnouncement(59), 'Less than a minute left.');
    assert.equal(timeLeftAnnouncement(0), 'Your time has run out.');
  });

  it('ignores events of a room that is no longer the call', () => {
    const idle = initialTalkState(true);
    assert.equal(talkReducer(idle, meter(60, '2026-01-01T10:00:00Z', 0)), idle);
    assert.equal(talkReducer(idle, { type: 'agent_state', state: 'speaking' }), idle);
    assert.equal(talkReducer(idle, { type: 'connected' }), idle);
  });

  it('reads an agent state it does not know as unknown', () => {
    const state = run([...joined, { type: 'agent_state', state: 'dancing' }]);
    assert.equal(state.kind === 'in_call' && state.agentState, 'unknown');
  });
});

describe('talk state: purchase links and the end of a call', () => {
  const link: TalkEvent = { type: 'purchase_link', url: 'https://checkout.stripe.com/c/pay/cs_test_123', packageId: 'pkg_60' };

  it('shows a purchase link the agent sends during the call', () => {
    const state = run([...joined, link]);
    assert.deepEqual(state.kind === 'in_call' && state.purchaseLink,
      { url: 'https://checkout.stripe.com/c/pay/cs_test_123', packageId: 'pkg_60' });
  });

  it('drops a link that is not https', () => {
    for (const url of ['javascript:alert(1)', 'http://checkout.stripe.com/x', 'not a url', '']) {
      const state = run([...joined, { type: 'purchase_link', url, packageId: null }]);
      assert.equal(state.kind === 'in_call' && state.purchaseLink, null, url);
    }
  });

  it('ends on the cut-off screen, with the link, when the time ran out', () => {
    const t0 = 0;
    let state = run([...joined, meter(30, '2026-01-01T10:00:00Z', t0), link]);
    state = talkReducer(state, {
      type: 'attributes', receivedAtMs: t0 + 30_000,
      record: { ...callAttributes({ state: 'cut_off', remainingSeconds: 0, sessionId: 'sess-1' }), [CALL_ATTRIBUTES.meteredAt]: '2026-01-01T10:00:00.000Z' },
    });
    assert.equal(state.kind === 'in_call' && state.callState, 'cut_off');
    assert.equal(timeLeftSeconds(state, t0 + 30_000), 0);
    assert.equal(timeLeftAnnouncement(timeLeftSeconds(state, t0 + 30_000)), 'Your time has run out.');
    state = talkReducer(state, { type: 'disconnected', reason: 'agent_left' });
    assert.deepEqual(state, { kind: 'cut_off', sessionId: 'sess-1',
      purchaseLink: { url: 'https://checkout.stripe.com/c/pay/cs_test_123', packageId: 'pkg_60' } });
    assert.equal(canStartCall(state), true);
    // The room's late events change nothing once the call is over.
    assert.equal(talkReducer(state, meter(100, '2026-01-01T10:01:00Z', 1)), state);
  });

  it('ends as no time left when the agent found none, and as a plain end otherwise', () => {
    const noBalance = run([...joined,
      { type: 'attributes', receivedAtMs: 0, record: callAttributes({ state: 'no_balance', remainingSeconds: 0 }) },
      { type: 'disconnected', reason: 'agent_left' }]);
    assert.deepEqual(noBalance, { kind: 'no_balance', message: NO_BALANCE_MESSAGE, purchaseLink: null });
    assert.deepEqual(run([...joined, meter(500, '2026-01-01T10:00:00Z', 0), { type: 'disconnected', reason: 'you_left' }]),
      { kind: 'ended', reason: 'you_left', sessionId: 'sess-1' });
    assert.deepEqual(run([...joined,
      { type: 'attributes', receivedAtMs: 0, record: callAttributes({ state: 'store_unreachable', sessionId: 'sess-2' }) },
      { type: 'disconnected', reason: 'agent_left' }]),
    { kind: 'ended', reason: 'store_unreachable', sessionId: 'sess-2' });
  });
});
