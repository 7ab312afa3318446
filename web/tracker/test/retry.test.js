// Retries: a refused or lost request goes again with the same events and ids, after a
// growing wait; the queue stays bounded; events the gateway can never take are dropped.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, started } = require('../testing/fake');

const strip = (events) => events.map(({ id, ts, name }) => ({ id, ts, name }));

for (const [build, mod] of BUILDS) {
  describe(`retries (${build})`, () => {
    for (const [label, failure] of [
      ['a network error', 'network'],
      ['503', { status: 503, headers: { 'Retry-After': '1' } }],
      ['429', { status: 429 }],
      ['500', { status: 500 }],
      ['408', { status: 408 }],
    ]) {
      test(`after ${label} the same events, with the same ids and times, go again`, async () => {
        const page = started(mod);
        page.api('event', 'purchase', { revenue: { amount: 10, currency: 'INR' } });
        page.answer(failure);
        await page.advance(2000);
        assert.equal(page.requests.length, 1);
        assert.equal(page.tracker.queue().length, 2, 'back in the queue');
        page.answer({ status: 202 });
        await page.advance(60000);
        assert.equal(page.requests.length, 2);
        assert.deepEqual(strip(page.requests[1].events), strip(page.requests[0].events));
        assert.deepEqual(page.requests[1].events, page.requests[0].events);
        assert.equal(page.tracker.queue().length, 0);
      });
    }

    test('the wait doubles with each failure, with jitter, up to a minute', async () => {
      const page = started(mod);
      page.answer('network');
      await page.advance(2000);
      const waits = [];
      for (let i = 0; i < 9; i++) {
        const [wait] = page.pending();
        waits.push(wait);
        await page.advance(wait);
      }
      assert.equal(page.requests.length, 10);
      const ids = new Set(page.requests.map((r) => r.events[0].id));
      assert.equal(ids.size, 1, 'one event, one id, every try');
      waits.forEach((w, i) => {
        const full = Math.min(60000, 1000 * 2 ** i);
        assert.ok(w >= full / 2 && w <= full, `try ${i + 2}: waited ${w}, full wait ${full}`);
      });
    });

    test("Retry-After is the least wait", async () => {
      const page = started(mod);
      page.answer({ status: 503, headers: { 'Retry-After': '30' } });
      await page.advance(2000);
      assert.deepEqual(page.pending(), [30000]);
    });

    test('events tracked while retrying wait for the retry and go with it', async () => {
      const page = started(mod);
      page.answer({ status: 503 });
      await page.advance(2000);
      for (let i = 0; i < 15; i++) page.api('event', 'e' + i);
      assert.equal(page.requests.length, 1, 'a full batch does not jump the backoff');
      page.answer({ status: 202 });
      await page.advance(1000);
      assert.equal(page.requests.length, 2);
      assert.deepEqual(page.requests[1].events.map((e) => e.name).slice(0, 3), ['pageview', 'e0', 'e1']);
      assert.equal(page.requests[1].events.length, 16);
    });

    test('the queue is bounded: past 200 events the oldest are dropped', async () => {
      const page = started(mod);
      page.answer('network');
      await page.advance(2000);
      for (let i = 0; i < 300; i++) page.api('event', 'e' + i);
      assert.equal(page.tracker.queue().length, 200);
      assert.equal(page.tracker.queue()[0].name, 'e100');
      page.answer({ status: 202 });
      await page.advance(120000);
      const names = page.events().filter((e, i) => i > 0).map((e) => e.name);
      assert.equal(names.length, 200);
      assert.equal(names[0], 'e100');
      assert.equal(names[199], 'e299');
    });

    test('400: the events the gateway names are dropped, the others go again at once', async () => {
      const page = started(mod);
      page.api('event', 'a');
      page.api('event', 'b');
      let first = true;
      page.answer(() => {
        if (!first) return { status: 202 };
        first = false;
        return { status: 400, body: JSON.stringify({ errors: [{ index: 1, field: 'site', error: 'unknown' }] }) };
      });
      await page.advance(2000);
      await page.advance(2000);
      assert.equal(page.requests.length, 2);
      assert.deepEqual(page.requests[1].events, [page.requests[0].events[0], page.requests[0].events[2]]);
      assert.equal(page.tracker.queue().length, 0);
    });

    for (const [label, answer] of [
      ['400 with no error list', { status: 400, body: '{"error":"body is not valid JSON"}' }],
      ['400 naming no event of the batch', { status: 400, body: '{"errors":[{"index":7}]}' }],
      ['413', { status: 413 }],
      ['415', { status: 415 }],
    ]) {
      test(`${label}: the batch is dropped, never retried`, async () => {
        const page = started(mod);
        page.answer(answer);
        await page.advance(2000);
        await page.advance(120000);
        assert.equal(page.requests.length, 1);
        assert.equal(page.tracker.queue().length, 0);
        page.answer({ status: 202 });
        page.api('event', 'next');
        await page.advance(2000);
        assert.deepEqual(page.requests[1].events.map((e) => e.name), ['next'], 'sending goes on');
      });
    }

    test('XHR failures are retried the same way', async () => {
      const page = started(mod, undefined, { fetch: false });
      page.answer({ status: 0 });
      await page.advance(2000);
      page.answer({ status: 202 });
      await page.advance(1000);
      assert.equal(page.requests.length, 2);
      assert.deepEqual(page.requests[1].events, page.requests[0].events);
    });
  });
}
