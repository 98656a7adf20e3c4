import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { greetingText, LOW_BALANCE_GREETING_SECONDS, type GreetingCaller } from '../src/agent/greeting.ts';

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
