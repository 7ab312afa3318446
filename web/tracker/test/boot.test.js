// The file as a browser runs it: the snippet's attributes, the stub queue, and never an
// error thrown into the host page, whatever the browser lacks or refuses.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { BUILDS, config, fakeWindow, started } = require('../testing/fake');

const FILES = { src: 'footfall.src.js', min: 'footfall.js' };
const STUB = 'window.footfall=window.footfall||function(){(footfall.q=footfall.q||[]).push(arguments)}';

function scriptTag(attrs, src = 'https://gw.example.net/v1/footfall.js') {
  const data = Object.fromEntries(Object.entries(attrs).map(([k, v]) => ['data-' + k, v]));
  return { src, getAttribute: (n) => (n in data ? data[n] : null) };
}

/** Runs the file in a fresh context, as a <script> would, with `window` as its global. */
function load(build, win, before = '') {
  const code = fs.readFileSync(path.join(__dirname, '..', FILES[build]), 'utf8');
  const context = vm.createContext(win);
  win.window = context;
  if (before) vm.runInContext(before, context);
  vm.runInContext(code, context);
  return context;
}

/** An object every property read of which throws, and calling or constructing which throws. */
function hostile() {
  const h = new Proxy(function () {}, {
    get() {
      throw new Error('hostile get');
    },
    has() {
      throw new Error('hostile has');
    },
    apply() {
      throw new Error('hostile call');
    },
    construct() {
      throw new Error('hostile new');
    },
  });
  return h;
}

for (const [build, mod] of BUILDS) {
  describe(`the snippet (${build})`, () => {
    test('the stub queue: calls made before the file loaded run after the first pageview', async () => {
      const page = fakeWindow('https://shop.example.com/');
      page.doc.currentScript = scriptTag({ site: 'shop' });
      const ctx = load(build, page.win, STUB + ";footfall('event','early',{props:{a:1}})");
      assert.equal(typeof ctx.footfall, 'function');
      assert.equal(ctx.footfall.q, undefined, 'the stub is replaced');
      ctx.footfall('event', 'late');
      await page.advance(2000);
      assert.deepEqual(page.events().map((e) => e.name), ['pageview', 'early', 'late']);
      assert.deepEqual(page.events()[1].props, { a: 1 });
    });

    test('collect is found beside the script, whatever path or query the script had', async () => {
      for (const [src, api] of [
        ['https://gw.example.net/v1/footfall.js', 'https://gw.example.net/v1/collect'],
        ['https://cdn.example.net/ff/v1/footfall.0123abcd.js?v=2', 'https://cdn.example.net/ff/v1/collect'],
      ]) {
        const page = fakeWindow();
        page.doc.currentScript = scriptTag({ site: 'shop' }, src);
        load(build, page.win);
        await page.advance(2000);
        assert.equal(page.requests[0].url, api);
      }
    });

    test('data-* attributes: api, cookieless, hash, respect-dnt, sample, cookie-domain', async () => {
      const page = fakeWindow('https://shop.example.com/#/home', { dnt: false });
      page.doc.currentScript = scriptTag({
        site: 'shop',
        api: 'https://a.example.net/collect',
        cookieless: '',
        hash: '',
        'respect-dnt': '',
        sample: '8',
      });
      load(build, page.win);
      await page.advance(2000);
      const [req] = page.requests;
      assert.equal(req.url, 'https://a.example.net/collect', 'cookieless: no sampling, no rate');
      assert.equal(req.events[0].url, 'https://shop.example.com/#/home');
      assert.equal('visitor' in req.events[0], false);

      const dnt = fakeWindow('https://shop.example.com/', { dnt: true });
      dnt.doc.currentScript = scriptTag({ site: 'shop', 'respect-dnt': 'true' });
      load(build, dnt.win);
      await dnt.advance(2000);
      assert.equal(dnt.requests.length, 0);

      const off = fakeWindow('https://shop.example.com/', { dnt: true });
      off.doc.currentScript = scriptTag({ site: 'shop', 'respect-dnt': 'false', 'cookie-domain': 'example.com' });
      load(build, off.win);
      await off.advance(2000);
      assert.equal(off.requests.length, 1, 'data-respect-dnt="false" is off');
      assert.ok(off.cookies.get('ff_id').attrs.includes('Domain=example.com'));
    });

    test('without currentScript, the first script[data-site] is used', async () => {
      const page = fakeWindow();
      page.doc.querySelector = (sel) => (sel === 'script[data-site]' ? scriptTag({ site: 'shop' }) : null);
      load(build, page.win);
      await page.advance(2000);
      assert.equal(page.events().length, 1);
    });

    test('loaded twice: one tracker, one pageview', async () => {
      const page = fakeWindow();
      page.doc.currentScript = scriptTag({ site: 'shop' });
      const ctx = load(build, page.win);
      const first = ctx.footfall;
      load(build, page.win);
      assert.equal(ctx.footfall, first);
      await page.advance(2000);
      assert.equal(page.events().length, 1);
    });

    test('a missing or invalid data-site: nothing starts, the stub stays', async () => {
      for (const attrs of [{}, { site: 'Bad Site!' }]) {
        const page = fakeWindow();
        page.doc.currentScript = scriptTag(attrs);
        const ctx = load(build, page.win, STUB);
        ctx.footfall('event', 'x');
        assert.equal(ctx.footfall.q.length, 1);
        await page.advance(5000);
        assert.equal(page.requests.length, 0);
      }
    });
  });

  describe(`never throws into the host page (${build})`, () => {
    test('loading in a window whose every property throws', () => {
      const code = fs.readFileSync(path.join(__dirname, '..', FILES[build]), 'utf8');
      assert.doesNotThrow(() => vm.runInNewContext(code, { window: hostile() }));
    });

    test("a tracker whose window turns hostile: api, flush and start stay quiet", () => {
      const page = fakeWindow();
      const t = mod.create(page.win, config());
      for (const key of ['document', 'navigator', 'location', 'history', 'localStorage']) {
        Object.defineProperty(page.win, key, { get: hostile() });
      }
      assert.doesNotThrow(() => {
        t.start();
        t.api('event', 'x');
        t.api('pageview');
        t.flush();
      });
    });

    test('a document whose every property throws', () => {
      const page = fakeWindow();
      page.win.document = hostile();
      const ctx = vm.createContext(page.win);
      page.win.window = ctx;
      assert.doesNotThrow(() => vm.runInContext(fs.readFileSync(path.join(__dirname, '..', FILES[build]), 'utf8'), ctx));
    });

    test('every browser API failing after start: calls, events and timers stay quiet', async () => {
      const page = started(mod);
      const boom = () => {
        throw new Error('boom');
      };
      page.win.fetch = boom;
      page.win.XMLHttpRequest = boom;
      page.win.navigator.sendBeacon = boom;
      page.win.crypto = hostile();
      page.win.screen = hostile();
      Object.defineProperty(page.doc, 'cookie', { get: boom, set: boom });
      Object.defineProperty(page.doc, 'title', { get: boom });
      page.win.setTimeout = boom;
      page.win.clearTimeout = boom;
      assert.doesNotThrow(() => {
        page.api('event', 'x', { props: hostile(), revenue: hostile() });
        page.api('event', 'y', hostile());
        page.api(hostile(), hostile(), hostile());
        page.api();
        page.win.history.pushState({}, '', '/next');
        page.win.history.replaceState({}, '', '/other');
        page.win.dispatch('popstate');
        page.win.dispatch('pageshow', hostile());
        page.win.dispatch('pagehide');
        page.doc.visibilityState = 'hidden';
        page.doc.dispatch('visibilitychange');
      });
      await page.advance(100000);
    });

    test('fetch rejecting and XHR failing are retried, never thrown', async () => {
      const page = started(mod);
      page.win.fetch = () => Promise.reject(new Error('offline'));
      await page.advance(2000);
      assert.ok(page.pending().length === 1, 'a retry is scheduled');
      page.win.fetch = () => Promise.resolve({ status: 202, headers: hostile(), text: hostile() });
      await page.advance(60000);
      assert.equal(page.tracker.queue().length, 1, 'an unreadable answer is a failure: kept for retry');
    });
  });
}
