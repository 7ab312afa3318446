// The visitor cookie, cookieless mode, opt-out, Do Not Track and client-side sampling.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, API, SITE, config, fakeWindow, started } = require('../testing/fake');

/** A new page load on the same browser (cookie jar and storage kept). */
function reload(mod, prev, url, cfg = {}, opts = {}) {
  const page = fakeWindow(url, { cookies: prev.cookies, storage: prev.storage, ...opts });
  const tracker = mod.create(page.win, config(cfg));
  tracker.start();
  return { ...page, tracker, api: tracker.api };
}

for (const [build, mod] of BUILDS) {
  describe(`visitor cookie (${build})`, () => {
    test('a first-party cookie holds the visitor id, the same on the next page load', async () => {
      const first = started(mod, 'https://shop.example.com/');
      await first.advance(2000);
      const cookie = first.cookies.get('ff_id');
      assert.match(cookie.value, /^[0-9a-f]{32}$/);
      assert.deepEqual(cookie.attrs, ['Max-Age=63072000', 'Path=/', 'SameSite=Lax', 'Secure']);
      const second = reload(mod, first, 'https://shop.example.com/cart');
      await second.advance(2000);
      assert.equal(first.events()[0].visitor, cookie.value);
      assert.equal(second.events()[0].visitor, cookie.value);
    });

    test('data-cookie-domain sets the Domain; plain http gets no Secure', async () => {
      const page = started(mod, 'http://shop.example.com/', {}, { domain: 'example.com' });
      await page.advance(2000);
      assert.deepEqual(page.cookies.get('ff_id').attrs, ['Max-Age=63072000', 'Path=/', 'SameSite=Lax', 'Domain=example.com']);
    });

    test('cookies refused: no visitor field, so the gateway decides (never a new id per page)', async () => {
      const page = started(mod, undefined, { cookiesBlocked: true });
      await page.advance(2000);
      assert.equal(page.events().length, 1);
      assert.equal('visitor' in page.events()[0], false);
    });

    test('cookieless: no cookie written or read, no visitor field (the gateway hashes)', async () => {
      const cookies = new Map([['ff_id', { value: 'old-id', attrs: [] }]]);
      const page = started(mod, undefined, { cookies }, { cookieless: true });
      page.api('event', 'x');
      await page.advance(2000);
      assert.equal(page.events().length, 2);
      for (const e of page.events()) assert.equal('visitor' in e, false);
      assert.deepEqual([...page.cookies.keys()], ['ff_id']);
      assert.deepEqual(page.cookies.get('ff_id').attrs, [], 'untouched');
    });
  });

  describe(`opt-out and Do Not Track (${build})`, () => {
    test("localStorage footfall_ignore=true: nothing is sent and no cookie is set", async () => {
      const storage = new Map([['footfall_ignore', 'true']]);
      const page = started(mod, undefined, { storage });
      page.api('event', 'purchase', { revenue: { amount: 1, currency: 'INR' } });
      page.win.history.pushState({}, '', '/next');
      page.win.dispatch('pagehide');
      await page.advance(10000);
      assert.equal(page.requests.length, 0);
      assert.equal(page.cookies.size, 0);
    });

    test('the opt-out takes effect at once, mid-page, and can be lifted', async () => {
      const page = started(mod);
      page.storage.set('footfall_ignore', 'true');
      page.api('event', 'hidden');
      page.storage.set('footfall_ignore', 'false');
      page.api('event', 'seen');
      await page.advance(2000);
      assert.deepEqual(page.events().map((e) => e.name), ['pageview', 'seen']);
    });

    test('localStorage that throws (blocked storage) does not stop tracking', async () => {
      const page = fakeWindow();
      Object.defineProperty(page.win, 'localStorage', {
        get() {
          throw new Error('SecurityError: access denied');
        },
      });
      mod.create(page.win, config()).start();
      await page.advance(2000);
      assert.equal(page.events().length, 1);
    });

    for (const [label, opts] of [
      ['navigator.doNotTrack', { dnt: true }],
      ['Global Privacy Control', { gpc: true }],
    ]) {
      test(`data-respect-dnt with ${label}: nothing is sent`, async () => {
        const page = started(mod, undefined, opts, { dnt: true });
        page.api('event', 'x');
        page.win.dispatch('pagehide');
        await page.advance(5000);
        assert.equal(page.requests.length, 0);
        assert.equal(page.cookies.size, 0);
      });

      test(`${label} without data-respect-dnt: tracked`, async () => {
        const page = started(mod, undefined, opts);
        await page.advance(2000);
        assert.equal(page.events().length, 1);
      });
    }

    test("window.doNotTrack (older browsers) counts too", async () => {
      const page = fakeWindow();
      page.win.doNotTrack = '1';
      mod.create(page.win, config({ dnt: true })).start();
      await page.advance(2000);
      assert.equal(page.requests.length, 0);
    });
  });

  describe(`client-side sampling (${build})`, () => {
    test('fnv is FNV-1a 32 (known vectors)', () => {
      assert.equal(mod.fnv(''), 0x811c9dc5);
      assert.equal(mod.fnv('a'), 0xe40c292c);
      assert.equal(mod.fnv('foobar'), 0xbf9cf968);
    });

    const visitorWhere = (pred) => {
      for (let i = 0; ; i++) {
        const v = 'v' + i;
        if (pred(mod.fnv(SITE + '|' + v) % 4)) return v;
      }
    };

    test('data-sample=4: a kept visitor sends everything, marked sample_rate=4 on the url', async () => {
      const v = visitorWhere((r) => r === 0);
      const cookies = new Map([['ff_id', { value: v, attrs: [] }]]);
      const page = started(mod, undefined, { cookies }, { sample: 4 });
      page.api('event', 'x');
      await page.advance(2000);
      page.win.dispatch('pagehide');
      assert.equal(page.events().length, 2);
      assert.equal(page.events()[0].visitor, v);
      assert.equal(page.requests[0].url, API + '?sample_rate=4');
      // Only wire fields in the body: the rate is not an event field.
      assert.equal(JSON.stringify(page.requests[0].events).includes('sample'), false);
    });

    test('data-sample=4: a visitor outside the sample sends nothing, on every page load', async () => {
      const v = visitorWhere((r) => r !== 0);
      const cookies = new Map([['ff_id', { value: v, attrs: [] }]]);
      const first = started(mod, undefined, { cookies }, { sample: 4 });
      first.api('event', 'x');
      first.win.dispatch('pagehide');
      await first.advance(5000);
      assert.equal(first.requests.length, 0);
      assert.equal(first.cookies.get('ff_id').value, v, 'the cookie keeps the decision stable');
      const second = reload(mod, first, undefined, { sample: 4 });
      await second.advance(5000);
      assert.equal(second.requests.length, 0);
    });

    test('about 1 in N new visitors is kept', async () => {
      let kept = 0;
      for (let i = 0; i < 2000; i++) {
        const page = started(mod, undefined, {}, { sample: 4 });
        page.win.dispatch('pagehide');
        kept += page.requests.length;
      }
      assert.ok(kept > 400 && kept < 600, `${kept} of 2000 kept at 1 in 4`);
    });

    test('no sampling without a visitor id (cookieless, or cookies refused)', async () => {
      for (const [opts, cfg] of [
        [{}, { cookieless: true, sample: 1000000 }],
        [{ cookiesBlocked: true }, { sample: 1000000 }],
      ]) {
        const page = started(mod, undefined, opts, cfg);
        await page.advance(2000);
        assert.equal(page.requests.length, 1);
        assert.equal(page.requests[0].url, API);
      }
    });

    test('data-sample of 1, 0 or junk means no sampling', async () => {
      for (const sample of [1, 0, NaN, -3, 0.5]) {
        const page = started(mod, undefined, {}, { sample });
        await page.advance(2000);
        assert.equal(page.requests[0].url, API, String(sample));
      }
    });
  });
}
