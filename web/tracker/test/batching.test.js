// Queueing and batching: what one event looks like on the wire, when a batch leaves.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, API, SITE, started } = require('../testing/fake');

for (const [build, mod] of BUILDS) {
  describe(`queueing and batching (${build})`, () => {
    test('the pageview on load waits for company, then leaves as one fetch batch', async () => {
      const page = started(mod, 'https://shop.example.com/shoes?utm_source=news#top');
      assert.equal(page.requests.length, 0);
      assert.deepEqual(page.pending(), [2000]);
      await page.advance(1999);
      assert.equal(page.requests.length, 0);
      await page.advance(1);
      assert.equal(page.requests.length, 1);
      const [req] = page.requests;
      assert.equal(req.via, 'fetch');
      assert.equal(req.url, API);
      assert.equal(req.init.method, 'POST');
      assert.equal(req.init.keepalive, true);
      assert.equal(req.init.headers['Content-Type'], 'text/plain');
      assert.deepEqual(Object.keys(JSON.parse(req.body)), ['events']);
      const [ev] = req.events;
      assert.equal(ev.site, SITE);
      assert.equal(ev.name, 'pageview');
      assert.equal(ev.url, 'https://shop.example.com/shoes?utm_source=news', 'no fragment without data-hash');
      assert.equal(ev.referrer, 'https://search.example.org/?q=shoes');
      assert.equal(ev.title, 'Shop');
      assert.equal(ev.screen, '1280x720');
      assert.equal(ev.lang, 'en-IN');
      assert.match(ev.id, /^[0-9a-f]{32}$/);
      assert.match(ev.visitor, /^[0-9a-f]{32}$/);
      assert.ok(Math.abs(ev.ts - Date.now()) < 5000);
      // Only fields of the wire format (spec/events.md): the gateway rejects unknown ones.
      const wire = ['site', 'name', 'url', 'visitor', 'id', 'ts', 'referrer', 'title', 'props', 'revenue', 'screen', 'lang'];
      for (const key of Object.keys(ev)) assert.ok(wire.includes(key), key);
    });

    test('events within the interval share one request; a full batch leaves at once', async () => {
      const page = started(mod);
      for (let i = 0; i < 8; i++) page.api('event', 'click', { props: { i } });
      assert.equal(page.requests.length, 0, '9 queued: under the batch size');
      page.api('event', 'click', { props: { i: 8 } });
      assert.equal(page.requests.length, 1, 'the 10th event sends the batch');
      assert.equal(page.requests[0].events.length, 10);
      assert.equal(page.tracker.queue().length, 0);
      page.api('event', 'later');
      await page.advance(2000);
      assert.equal(page.requests.length, 2);
      assert.deepEqual(page.requests[1].events.map((e) => e.name), ['later']);
      const ids = page.events().map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
    });

    test('a queue that grew while a request was out leaves in requests of at most 50', async () => {
      const page = started(mod);
      for (let i = 0; i < 129; i++) page.api('event', 'e' + i);
      await page.advance(0);
      await page.advance(2000);
      const sizes = page.requests.map((r) => r.events.length);
      assert.deepEqual(sizes.slice(0, 1), [10]);
      assert.ok(sizes.every((n) => n <= 50), String(sizes));
      assert.equal(sizes.reduce((a, b) => a + b, 0), 130);
      assert.deepEqual(page.events().map((e) => e.name).slice(1, 4), ['e0', 'e1', 'e2']);
    });

    test('custom events and purchases carry props and revenue, cleaned to the wire rules', async () => {
      const page = started(mod);
      page.api('event', 'signup', { props: { plan: 'pro', seats: 3, trial: true } });
      page.api('event', 'purchase', { revenue: { amount: 1499.5, currency: 'inr' }, props: { sku: 'SHOE-1' } });
      const many = {};
      for (let i = 0; i < 40; i++) many['k' + i] = i;
      many['x'.repeat(65)] = 'key too long';
      page.api('event', 'noisy', {
        props: Object.assign(many, { long: 'é'.repeat(300), fn() {}, obj: {}, nan: NaN, nul: null }),
      });
      page.api('event', 'refund', { revenue: { amount: -5, currency: 'INR' } });
      page.api('event', 'huge', { revenue: { amount: 2e15, currency: 'IRR' } });
      page.api('event', 'odd', { revenue: { amount: 5, currency: 'RUPEES' }, props: 'not an object' });
      await page.advance(2000);
      const byName = Object.fromEntries(page.events().map((e) => [e.name, e]));
      assert.deepEqual(byName.signup.props, { plan: 'pro', seats: 3, trial: true });
      assert.deepEqual(byName.purchase.revenue, { amount: 1499.5, currency: 'INR' });
      assert.deepEqual(byName.purchase.props, { sku: 'SHOE-1' });
      assert.equal(byName.purchase.url, 'https://shop.example.com/');
      assert.equal(Object.keys(byName.noisy.props).length, 30);
      assert.ok(Object.keys(byName.noisy.props).every((k) => k.length <= 64));
      assert.equal(byName.noisy.props.long, undefined, 'past the 30th key');
      assert.equal(byName.refund.revenue, undefined);
      assert.equal(byName.huge.revenue, undefined, 'the gateway would refuse the request');
      assert.equal(byName.odd.revenue, undefined);
      assert.equal(byName.odd.props, undefined);
    });

    test('long values are cut to the limits, never in half a surrogate pair', async () => {
      const page = started(mod, 'https://shop.example.com/' + 'p'.repeat(3000), { title: 'a' + '😀'.repeat(400) });
      page.api('event', 'x', { props: { s: 'b' + '😀'.repeat(200) } });
      await page.advance(2000);
      const [pv, ev] = page.events();
      assert.equal(pv.url.length, 2048);
      assert.equal(pv.title.length, 511, 'the half emoji at 512 is dropped');
      assert.doesNotMatch(pv.title, /[\ud800-\udbff]$/);
      assert.equal(ev.props.s.length, 255);
    });

    test('names outside the wire rule are not sent', async () => {
      const page = started(mod);
      page.api('event', 'has space');
      page.api('event', '');
      page.api('event', 'x'.repeat(65));
      page.api('event');
      page.api('event', 123);
      page.api('unknown-command', 'x');
      page.api('event', 'ok:name_1.2-3');
      await page.advance(2000);
      assert.deepEqual(page.events().map((e) => e.name), ['pageview', 'ok:name_1.2-3']);
    });

    test('pages that are not http(s) send nothing (the gateway would refuse the url)', async () => {
      const page = started(mod, 'file:///home/me/page.html');
      page.api('event', 'x');
      await page.advance(5000);
      assert.equal(page.requests.length, 0);
    });

    test('without fetch, requests go by XMLHttpRequest', async () => {
      const page = started(mod, undefined, { fetch: false });
      await page.advance(2000);
      assert.equal(page.requests.length, 1);
      const [req] = page.requests;
      assert.equal(req.via, 'xhr');
      assert.equal(req.headers['Content-Type'], 'text/plain');
      assert.equal(req.xhr.withCredentials, true);
      assert.equal(req.events[0].name, 'pageview');
    });
  });
}
