// The web app's API client reads every answer through its contract (src/shared/api-contracts.ts): a good
// answer comes back typed, one in another shape is a clear ApiError instead of undefined fields on screen.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError, createApi } from '../src/web/api.ts';
import { BalanceResponse, PurchaseResponse } from '../src/shared/api-contracts.ts';

function fakeFetch(answer: unknown, status = 200) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const impl = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(answer), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { impl, calls };
}

const balance = { user_id: 'u1', total_minutes: 2, total_seconds: 150, card_count: 1, next_expiry: '2026-04-01T00:00:00.000Z',
  cards: [{ card_id: 'c1', package_id: 'starter_1h', source: 'purchase', remaining_seconds: 150, remaining_minutes: 2,
    total_seconds: 3600, activated_at: null, expires_at: '2026-04-01T00:00:00.000Z' }] };

describe('web API client', () => {
  it('returns an answer that matches its contract, typed', async () => {
    const { impl, calls } = fakeFetch(balance);
    const api = createApi(() => 'tok', impl);
    const answer = await api.get('/time/balance', BalanceResponse);
    assert.deepEqual(answer, balance);
    assert.equal(new Headers(calls[0]!.init.headers).get('authorization'), 'Bearer tok');
  });

  it('turns an answer in another shape into an ApiError naming the field', async () => {
    const { impl } = fakeFetch({ ...balance, total_seconds: '150' });
    const api = createApi(() => null, impl);
    await assert.rejects(api.get('/time/balance', BalanceResponse), (error: unknown) =>
      error instanceof ApiError && error.code === 'unexpected_answer' && /total_seconds/.test(error.message));
  });

  it('sends a post with its schema and headers; a refusal is still the server\'s own error', async () => {
    const started = { kind: 'checkout', checkout_url: 'https://checkout.stripe.test/x', checkout_session_id: 'cs_1', package_id: 'p', gift: false };
    const { impl, calls } = fakeFetch(started);
    const api = createApi(() => null, impl);
    assert.deepEqual(await api.post('/time/purchase', { package_id: 'p' }, PurchaseResponse, { 'Idempotency-Key': 'key-12345' }), started);
    assert.equal(new Headers(calls[0]!.init.headers).get('idempotency-key'), 'key-12345');
    const refused = createApi(() => null, fakeFetch({ error: { code: 'payments_unavailable', message: 'not configured' } }, 503).impl);
    await assert.rejects(refused.post('/time/purchase', {}, PurchaseResponse), (error: unknown) =>
      error instanceof ApiError && error.status === 503 && error.code === 'payments_unavailable');
  });
});
