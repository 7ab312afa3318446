// Single-page apps: a pageview on every route change, and only then.
'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const { BUILDS, config, fakeWindow, started } = require('../testing/fake');

const views = (page) => page.events().filter((e) => e.name === 'pageview');

for (const [build, mod] of BUILDS) {
  describe(`SPA navigation (${build})`, () => {
    test('pushState to a new route counts a pageview; its referrer is the previous route', async () => {
      const page = started(mod, 'https://shop.example.com/');
      page.win.history.pushState({}, '', '/products?c=shoes');
      page.win.history.pushState({}, '', '/cart');
      await page.advance(2000);
      const v = views(page);
      assert.deepEqual(v.map((e) => e.url), [
        'https://shop.example.com/',
        'https://shop.example.com/products?c=shoes',
        'https://shop.example.com/cart',
      ]);
      assert.equal(v[1].referrer, 'https://shop.example.com/');
      assert.equal(v[2].referrer, 'https://shop.example.com/products?c=shoes');
    });

    test('replaceState counts only when the url changes', async () => {
      const page = started(mod, 'https://shop.example.com/a');
      page.win.history.replaceState({ scroll: 10 }, '');
      page.win.history.replaceState({ scroll: 20 }, '', '/a');
      page.win.history.replaceState({}, '', '/b');
      await page.advance(2000);
      assert.deepEqual(views(page).map((e) => new URL(e.url).pathname), ['/a', '/b']);
    });

    test("the wrapped history methods keep the page's result, `this` and errors", () => {
      const page = fakeWindow();
      let self;
      page.win.history.pushState = function (state, title, url) {
        self = this;
        if (url.startsWith('https://other.example')) throw new Error('SecurityError: cross-origin url');
        return 'result';
      };
      mod.create(page.win, config()).start();
      assert.equal(page.win.history.pushState({}, '', '/x'), 'result');
      assert.equal(self, page.win.history);
      assert.throws(() => page.win.history.pushState({}, '', 'https://other.example/'), /SecurityError/);
    });

    test('popstate (back, forward) counts the route it lands on', async () => {
      const page = started(mod, 'https://shop.example.com/a');
      page.win.history.pushState({}, '', '/b');
      page.go('/a');
      page.win.dispatch('popstate');
      page.win.dispatch('popstate'); // same url again: no second view
      await page.advance(2000);
      assert.deepEqual(views(page).map((e) => new URL(e.url).pathname), ['/a', '/b', '/a']);
    });

    test('without data-hash, fragment changes are not pageviews', async () => {
      const page = started(mod, 'https://shop.example.com/a');
      page.win.history.pushState({}, '', '#section-2');
      page.go('#section-3');
      page.win.dispatch('hashchange');
      page.win.dispatch('popstate');
      await page.advance(2000);
      assert.equal(views(page).length, 1);
      assert.equal(views(page)[0].url, 'https://shop.example.com/a');
    });

    test('with data-hash, each fragment route is a pageview whose url keeps it', async () => {
      const page = started(mod, 'https://shop.example.com/#/home', {}, { hash: true });
      page.go('#/products');
      page.win.dispatch('hashchange');
      page.win.history.pushState({}, '', '#/cart');
      page.win.dispatch('hashchange'); // the same change, seen twice
      await page.advance(2000);
      assert.deepEqual(views(page).map((e) => e.url), [
        'https://shop.example.com/#/home',
        'https://shop.example.com/#/products',
        'https://shop.example.com/#/cart',
      ]);
    });

    test('a page restored from the back/forward cache counts again', async () => {
      const page = started(mod);
      page.win.dispatch('pageshow', { persisted: false });
      assert.equal(page.tracker.queue().length, 1);
      page.win.dispatch('pageshow', { persisted: true });
      assert.equal(page.tracker.queue().length, 2);
    });

    test('a prerendered page counts when it is shown, not before', () => {
      const page = fakeWindow();
      page.doc.prerendering = true;
      const t = mod.create(page.win, config());
      t.start();
      assert.equal(t.queue().length, 0);
      page.doc.prerendering = false;
      page.doc.dispatch('prerenderingchange');
      assert.equal(t.queue().length, 1);
    });

    test("footfall('pageview') counts the current page on demand, with props", async () => {
      const page = started(mod);
      page.api('pageview', { props: { variant: 'b' } });
      await page.advance(2000);
      assert.equal(views(page).length, 2);
      assert.deepEqual(views(page)[1].props, { variant: 'b' });
    });
  });
}
