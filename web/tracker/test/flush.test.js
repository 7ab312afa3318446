// Leaving the page: the queue is handed to sendBeacon, else keepalive fetch, else XHR.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, API, started } = require('../testing/fake');

for (const [build, mod] of BUILDS) {
  describe(`flush when the page is hidden or left (${build})`, () => {
    test('pagehide sends the queue by sendBeacon, as text, at once', async () => {
      const page = started(mod);
      page.api('event', 'purchase', { revenue: { amount: 99, currency: 'INR' } });
      page.win.dispatch('pagehide', { persisted: false });
      assert.equal(page.requests.length, 1);
      const [req] = page.requests;
      assert.equal(req.via, 'beacon');
      assert.equal(req.url, API);
      assert.equal(typeof req.body, 'string', 'a string body: sendBeacon sends it as text/plain');
      assert.deepEqual(req.events.map((e) => e.name), ['pageview', 'purchase']);
      assert.equal(page.tracker.queue().length, 0);
      assert.deepEqual(page.pending(), [], 'the batch timer is gone');
      await page.advance(10000);
      assert.equal(page.requests.length, 1, 'nothing is sent twice');
    });

    test('visibilitychange to hidden flushes; to visible does not', async () => {
      const page = started(mod);
      page.doc.visibilityState = 'visible';
      page.doc.dispatch('visibilitychange');
      assert.equal(page.requests.length, 0);
      page.doc.visibilityState = 'hidden';
      page.doc.dispatch('visibilitychange');
      assert.equal(page.requests.length, 1);
      assert.equal(page.requests[0].via, 'beacon');
      // Back on the page: tracking goes on as before.
      page.doc.visibilityState = 'visible';
      page.api('event', 'again');
      await page.advance(2000);
      assert.equal(page.requests[1].via, 'fetch');
      assert.deepEqual(page.requests[1].events.map((e) => e.name), ['again']);
    });

    test('sendBeacon refusing (over its quota) falls back to keepalive fetch', () => {
      const page = started(mod, undefined, { beacon: 'refuse' });
      page.win.dispatch('pagehide');
      assert.equal(page.requests.length, 1);
      assert.equal(page.requests[0].via, 'fetch');
      assert.equal(page.requests[0].init.keepalive, true);
      assert.equal(page.requests[0].init.headers['Content-Type'], 'text/plain');
    });

    test('no sendBeacon: keepalive fetch', () => {
      const page = started(mod, undefined, { beacon: false });
      page.win.dispatch('pagehide');
      assert.deepEqual(page.requests.map((r) => r.via), ['fetch']);
    });

    test('neither sendBeacon nor fetch: XHR', () => {
      const page = started(mod, undefined, { beacon: false, fetch: false });
      page.win.dispatch('pagehide');
      assert.deepEqual(page.requests.map((r) => r.via), ['xhr']);
      assert.equal(page.requests[0].events[0].name, 'pageview');
    });

    test('sendBeacon throwing falls back too', () => {
      const page = started(mod);
      page.win.navigator.sendBeacon = () => {
        throw new TypeError('Illegal invocation');
      };
      page.win.dispatch('pagehide');
      assert.deepEqual(page.requests.map((r) => r.via), ['fetch']);
    });

    test('a long queue leaves in several beacons, each within the limits', async () => {
      const page = started(mod);
      page.answer('network');
      await page.advance(2000);
      const big = 'x'.repeat(250);
      for (let i = 0; i < 120; i++) page.api('event', 'e' + i, { props: { a: big, b: big, c: big } });
      page.win.dispatch('pagehide');
      const beacons = page.requests.filter((r) => r.via === 'beacon');
      assert.ok(beacons.length >= 3, String(beacons.length));
      for (const b of beacons) {
        assert.ok(b.events.length <= 50);
        assert.ok(Buffer.byteLength(b.body) < 65536);
      }
      assert.equal(beacons.reduce((n, b) => n + b.events.length, 0), 121);
      // The events the failed request held go too, with their ids.
      assert.equal(beacons[0].events[0].id, page.requests[0].events[0].id);
    });

    test('after a flush during backoff, new events are sent normally', async () => {
      const page = started(mod);
      page.answer('network');
      await page.advance(2000);
      page.win.dispatch('pagehide');
      page.answer({ status: 202 });
      page.api('event', 'back');
      await page.advance(2000);
      assert.deepEqual(page.requests.at(-1).events.map((e) => e.name), ['back']);
    });
  });
}
