import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { greetingCallerOf, greetingText, LOW_BALANCE_GREETING_SECONDS, type GreetingCaller } from '../src/agent/greeting.ts';
import type { SessionState } from '../src/billing/store.ts';

const HELP = 'How can I help you today?';

describe('greetingText', () => {
  const cases: Array<{ name: string; caller: GreetingCaller; expected: string | RegExp }> = [
    { name: 'guest', caller: { kind: 'guest' },
      expected: `Hi! I'm MindBot. You're talking as a guest, so your conversation time isn't tracked. Create a free account to buy talk time and keep track of it. ${HELP}` },
    { name: 'no time at all', caller: { kind: 'user', totalSeconds: 0 },
      expected: `Hi! You have no talk time left. Consider purchasing more time cards: ask me what the packages cost. ${HELP}` },
    { name: 'a negative balance counts as none', caller: { kind: 'user', totalSeconds: -5 }, expected: /^Hi! You have no talk time left\./ },
    { name: 'under a minute', caller: { kind: 'user', totalSeconds: 45 },
      expected: `Hi! You have less than a minute left. Consider purchasing more time cards so we can keep talking. ${HELP}` },
    { name: 'one minute', caller: { kind: 'user', totalSeconds: 60 }, expected: /^Hi! You have about 1 minute left\. Consider purchasing more time cards/ },
    { name: '12.5 minutes rounds down', caller: { kind: 'user', totalSeconds: 750 }, expected: /^Hi! You have about 12 minutes left\./ },
    { name: 'just under 30 minutes', caller: { kind: 'user', totalSeconds: LOW_BALANCE_GREETING_SECONDS - 1 },
      expected: /^Hi! You have about 29 minutes left\. Consider purchasing more time cards/ },
    { name: 'exactly 30 minutes', caller: { kind: 'user', totalSeconds: LOW_BALANCE_GREETING_SECONDS },
      expected: `Welcome back! You have 0.5 hours of conversation time remaining. ${HELP}` },
    { name: 'one hour', caller: { kind: 'user', totalSeconds: 3600 }, expected: /^Welcome back! You have 1 hour of conversation time remaining\./ },
    { name: 'five and a half hours', caller: { kind: 'user', totalSeconds: 5.5 * 3600 }, expected: /^Welcome back! You have 5\.5 hours of conversation time/ },
    { name: 'thirty hours', caller: { kind: 'user', totalSeconds: 30 * 3600 + 100 }, expected: /^Welcome back! You have 30 hours of conversation time/ },
  ];
  for (const { name, caller, expected } of cases) {
    it(name, () => {
      const text = greetingText(caller);
      if (typeof expected === 'string') assert.equal(text, expected);
      else assert.match(text, expected);
    });
  }

  it('only low balances suggest buying, only tracked users are welcomed back', () => {
    for (let seconds = 0; seconds < 40 * 3600; seconds += 97) {
      const text = greetingText({ kind: 'user', totalSeconds: seconds });
      assert.equal(/Consider purchasing more time cards/.test(text), seconds < LOW_BALANCE_GREETING_SECONDS, text);
      assert.equal(text.startsWith('Welcome back!'), seconds >= LOW_BALANCE_GREETING_SECONDS, text);
    }
    assert.doesNotMatch(greetingText({ kind: 'guest' }), /Welcome back|minutes left/);
  });
});

describe('greetingText when part of the balance expires before the call can use it', () => {
  it('says plainly how much expires when, and promises only what the call can use', () => {
    assert.equal(greetingText({ kind: 'user', totalSeconds: 7200, usableSeconds: 360, expiring: { seconds: 117 * 60, inSeconds: 180 } }),
      'Hi! You have 2 hours of conversation time, but 1 hour 57 minutes of it expires in 3 minutes, before this call can ' +
      `use it, so this call can last about 6 minutes. Consider purchasing more time cards so we can keep talking. ${HELP}`);
  });

  it('still welcomes back a caller who can talk long, in hours', () => {
    assert.equal(greetingText({ kind: 'user', totalSeconds: 10 * 3600 + 59, usableSeconds: 5.5 * 3600, expiring: { seconds: 4.5 * 3600, inSeconds: 40 } }),
      'Welcome back! You have 10 hours of conversation time, but 4 hours 30 minutes of it expires in less than a minute, ' +
      `before this call can use it, so this call can last about 5.5 hours. ${HELP}`);
  });

  it('never names more usable time than the balance minus what expires', () => {
    for (let expiring = 60; expiring < 7200; expiring += 433) {
      const text = greetingText({ kind: 'user', totalSeconds: 7200, expiring: { seconds: expiring, inSeconds: 120 } });
      const minutes = Number(/can last about (\d+) minutes/.exec(text)?.[1] ?? Infinity);
      const hours = Number(/can last about ([\d.]+) hours?/.exec(text)?.[1] ?? Infinity);
      assert.ok(Math.min(minutes * 60, hours * 3600) <= 7200 - expiring, text);
    }
  });

  it('reads the start answer: the balance is what is paid ahead plus the rest; nothing expiring, the plain greeting', () => {
    const now = new Date('2026-03-02T10:00:00Z');
    const later = (seconds: number) => new Date(now.getTime() + seconds * 1000);
    const state = {
      covered_until: later(60), remaining_seconds: 7140, payable_until: later(360),
      expiring_unused_seconds: 114 * 60, expiring_unused_until: later(180),
    } as SessionState;
    assert.deepEqual(greetingCallerOf(state, now),
      { kind: 'user', totalSeconds: 7200, usableSeconds: 360, expiring: { seconds: 114 * 60, inSeconds: 180 } });
    assert.deepEqual(greetingCallerOf({ ...state, payable_until: later(7200), expiring_unused_seconds: 0, expiring_unused_until: null }, now),
      { kind: 'user', totalSeconds: 7200 });
  });
});

describe('greetingText for a caller whose monthly plan pays (the spending cap ends the call)', () => {
  const now = new Date('2026-03-02T10:00:00Z');
  const later = (seconds: number) => new Date(now.getTime() + seconds * 1000);
  const plan = {
    status: 'active', period_start: new Date('2026-03-01T00:00:00Z'), period_usage_cents: 210, cap_cents: 5000,
    cap_left_cents: 4790, currency: 'usd',
  } as NonNullable<SessionState['plan']>;
  const state = {
    covered_until: later(60), remaining_seconds: 95_000, payable_until: later(95_800),
    expiring_unused_seconds: 0, expiring_unused_until: null, plan,
  } as unknown as SessionState;

  it('reads the plan block of the start answer: how long until the cap, the usage and the cap', () => {
    assert.deepEqual(greetingCallerOf(state, now), { kind: 'plan', seconds: 95_800, usageCents: 210, capCents: 5000, currency: 'usd' });
    // A suspended plan pays nothing: the call runs on cards, greeted as before.
    assert.equal(greetingCallerOf({ ...state, plan: { ...plan, status: 'suspended' } }, now).kind, 'user');
    assert.equal(greetingCallerOf({ ...state, plan: null }, now).kind, 'user');
  });

  it('speaks the period in money, and near the cap says how far it is', () => {
    assert.equal(greetingText(greetingCallerOf(state, now)),
      "Welcome back! This billing period you've used 2 dollars and 10 cents of your 50 dollars spending cap, enough for " +
      'about 26.6 hours more of talking. How can I help you today?');
    assert.equal(greetingText({ kind: 'plan', seconds: 424, usageCents: 0, capCents: 42, currency: 'usd' }),
      'Hi! You are about 7 minutes from your spending cap of 42 cents for this billing period. You can raise it in the ' +
      'MindBot app. How can I help you today?');
    // No billed call (the text console): the period against the cap only.
    assert.equal(greetingText({ kind: 'plan', seconds: null, usageCents: 210, capCents: 5000, currency: 'usd' }),
      "Welcome back! This billing period you've used 2 dollars and 10 cents of your 50 dollars spending cap. How can I help you today?");
  });
});
