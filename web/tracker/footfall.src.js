// footfall.js: the browser tracker. Sends pageviews and custom events to the gateway's
// POST /v1/collect in the wire format of shared/spec/events.md.
//
// Readable source; `npm run build` minifies it into footfall.js, which the gateway serves.
// Plain ES5 on purpose: a syntax error cannot be caught, and an old browser must get
// nothing rather than an error. In node (tests) nothing starts: `create` and `boot` are
// exported and take the window to work on.
(function (root) {
  'use strict';

  var BATCH = 10; // queued events that are sent at once
  var INTERVAL = 2000; // ms a lone event waits for company
  var MAX_QUEUE = 200; // events kept while the gateway is unreachable; the oldest go first
  var MAX_EVENTS = 50; // events per request (the gateway takes 500)
  // JSON chars per request: even at 3 UTF-8 bytes a char, under the 64 KiB that
  // sendBeacon and keepalive fetch may carry.
  var MAX_CHARS = 20000;
  var BACKOFF = 1000;
  var BACKOFF_MAX = 60000;
  var COOKIE = 'ff_id';
  var COOKIE_AGE_S = 63072000; // two years, as the gateway's own cookie
  var SITE_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
  var NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  var LANG_RE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

  function noop() {}

  // Every way in from the host page (its calls, events, timers, callbacks) goes through
  // this, so nothing the tracker does can throw into the page.
  function safe(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {}
    };
  }

  // FNV-1a, 32 bits: the client sampling hash (stable, tiny, no crypto needed).
  function fnv(s) {
    for (var h = 0x811c9dc5, i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24);
    }
    return h >>> 0;
  }

  // At most n UTF-16 units (so at most n code points, the gateway's measure), never
  // ending in half a surrogate pair, which would make the body invalid JSON to it.
  function cut(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n).replace(/[\ud800-\udbff]$/, '') : s;
  }

  function flag(v) {
    return v != null && v !== 'false';
  }

  function create(win, cfg) {
    var doc = win.document;
    var nav = win.navigator || {};
    var loc = win.location;
    var site = cfg.site;
    var sample = cfg.sample > 1 ? Math.floor(cfg.sample) : 1;
    var url = cfg.api;
    var q = [];
    var timer = 0;
    var busy = false;
    var fails = 0;
    var last; // the url of the last pageview
    var visitor; // undefined: not decided yet; '': none (cookieless, or cookies refused)
    var out = false; // sampled out

    function rid() {
      var a = [];
      var c = win.crypto;
      var s = '';
      if (c && c.getRandomValues) a = c.getRandomValues(new Uint8Array(16));
      for (var i = 0; i < 16; i++) s += ((a[i] == null ? (Math.random() * 256) | 0 : a[i]) + 256).toString(16).slice(1);
      return s;
    }

    function ignored() {
      try {
        if (win.localStorage.getItem('footfall_ignore') === 'true') return true;
      } catch (e) {}
      return (
        cfg.dnt &&
        (nav.doNotTrack == '1' || win.doNotTrack == '1' || nav.msDoNotTrack == '1' || nav.globalPrivacyControl === true)
      );
    }

    function readCookie() {
      var m = String(doc.cookie).match(new RegExp('(?:^|;\\s*)' + COOKIE + '=([0-9A-Za-z_-]{1,128})(?:;|$)'));
      return m ? m[1] : '';
    }

    // The visitor id, decided once, on the first event that is sent (so a visitor who
    // opted out never gets a cookie). The cookie's life is renewed on each page load.
    function decide() {
      if (visitor != null) return;
      visitor = '';
      if (cfg.cookieless) return;
      try {
        var v = readCookie() || rid();
        doc.cookie =
          COOKIE + '=' + v + '; Max-Age=' + COOKIE_AGE_S + '; Path=/; SameSite=Lax' +
          (cfg.domain ? '; Domain=' + cfg.domain : '') +
          (loc.protocol == 'https:' ? '; Secure' : '');
        // Cookies refused: no id of our own, or every page load would be a new visitor.
        visitor = readCookie() == v ? v : '';
      } catch (e) {}
      if (visitor && sample > 1) {
        out = fnv(site + '|' + visitor) % sample != 0;
        url += (url.indexOf('?') < 0 ? '?' : '&') + 'sample_rate=' + sample;
      }
    }

    function page() {
      var h = String(loc.href);
      return cfg.hash ? h : h.split('#')[0];
    }

    function props(p) {
      var o;
      var n = 0;
      for (var k in p) {
        var v = p[k];
        var t = typeof v;
        if (!Object.prototype.hasOwnProperty.call(p, k) || n >= 30 || k.length > 64 || !k) continue;
        if (t == 'string') v = cut(v, 256);
        else if (t == 'number' ? !isFinite(v) : t != 'boolean') continue;
        (o = o || {})[k] = v;
        n++;
      }
      return o;
    }

    function revenue(r) {
      var a = r && +r.amount;
      var c = r && String(r.currency).toUpperCase();
      // The gateway refuses a whole request over one amount outside 0..1e15.
      return a >= 0 && a <= 1e15 && /^[A-Z]{3}$/.test(c) ? { amount: a, currency: c } : undefined;
    }

    function track(name, o, ref) {
      if (ignored() || !/^https?:$/.test(loc.protocol)) return;
      decide();
      if (out) return;
      o = o || {};
      var scr = win.screen;
      var lang = nav.language;
      var e = { site: site, name: name, url: cut(page(), 2048), id: rid(), ts: new Date().getTime() };
      if (visitor) e.visitor = visitor;
      if (ref) e.referrer = cut(ref, 2048);
      if (doc.title) e.title = cut(doc.title, 512);
      if (scr && scr.width) e.screen = (scr.width | 0) + 'x' + (scr.height | 0);
      if (lang && lang.length <= 35 && LANG_RE.test(lang)) e.lang = lang;
      if (o.props && typeof o.props == 'object') e.props = props(o.props);
      if (o.revenue) e.revenue = revenue(o.revenue);
      q.push(e);
      if (q.length > MAX_QUEUE) q.splice(0, q.length - MAX_QUEUE);
      // While retrying, the retry timer sends; else a full batch goes now, a lone event soon.
      if (fails) return;
      if (q.length >= BATCH) send();
      else if (!timer) timer = win.setTimeout(safe(send), INTERVAL);
    }

    // One pageview per distinct page url (the fragment counts only with data-hash);
    // after the first, the referrer is the previous page.
    function pageview(force, o) {
      var u = page();
      if (u == last && !force) return;
      var ref = last || doc.referrer;
      last = u;
      track('pageview', o, ref);
    }

    // The next request's events, from the head of the queue.
    function take() {
      for (var n = 0, size = 0; n < q.length && n < MAX_EVENTS; n++) {
        size += JSON.stringify(q[n]).length + 1;
        if (n && size > MAX_CHARS) break;
      }
      return q.splice(0, n);
    }

    function retryIn(ms) {
      win.clearTimeout(timer);
      timer = win.setTimeout(safe(send), ms);
    }

    function send() {
      win.clearTimeout(timer);
      timer = 0;
      if (busy || !q.length) return;
      var batch = take();
      busy = true;
      post(JSON.stringify({ events: batch }), safe(function (status, text, after) {
        busy = false;
        if (status >= 200 && status < 300) {
          fails = 0;
        } else if (!status || status == 408 || status == 429 || status >= 500) {
          // Nothing of the request was accepted: the same events, same ids, go again.
          q = batch.concat(q);
          if (q.length > MAX_QUEUE) q.splice(0, q.length - MAX_QUEUE);
          fails++;
          var wait = Math.min(BACKOFF_MAX, BACKOFF * Math.pow(2, fails - 1)) * (0.5 + Math.random() / 2);
          return retryIn(Math.max(wait, Math.min(BACKOFF_MAX, (after | 0) * 1000)));
        } else if (status == 400) {
          // All or nothing: drop the events the gateway named, send the others again.
          var bad = {};
          var errors = [];
          try {
            errors = JSON.parse(text).errors || [];
          } catch (e) {}
          for (var i = 0; i < errors.length; i++) bad[errors[i].index] = 1;
          var keep = [];
          for (i = 0; i < batch.length; i++) if (!bad[i]) keep.push(batch[i]);
          if (keep.length < batch.length) q = keep.concat(q);
        } // any other answer (413, 415, ...): this batch can never pass; drop it
        if (q.length >= BATCH) send();
        else if (q.length) retryIn(INTERVAL);
      }));
    }

    // A request whose answer matters: fetch, else XHR. cb(status, body, retryAfter);
    // status 0 is a network error.
    function post(body, cb) {
      if (win.fetch) {
        try {
          // An answer that cannot be read counts as lost: the same ids make a resend safe.
          return win.fetch(url, init(body)).then(function (r) {
            var s = r.status;
            var after = r.headers.get('Retry-After');
            return r.text().then(function (t) {
              cb(s, t, after);
            });
          })['catch'](function () {
            cb(0);
          });
        } catch (e) {}
      }
      xhr(body, cb);
    }

    function init(body) {
      // text/plain keeps the request "simple": no CORS preflight.
      return { method: 'POST', body: body, keepalive: true, credentials: 'include', headers: { 'Content-Type': 'text/plain' } };
    }

    function xhr(body, cb) {
      try {
        var x = new win.XMLHttpRequest();
        x.open('POST', url, true);
        x.withCredentials = true;
        x.setRequestHeader('Content-Type', 'text/plain');
        x.onreadystatechange = function () {
          if (x.readyState == 4) cb(x.status, x.responseText, x.getResponseHeader('Retry-After'));
        };
        x.send(body);
      } catch (e) {
        cb(0);
      }
    }

    // The page is hidden or going away: hand every queued event to the browser, which
    // sends it even after the page is gone: sendBeacon, else keepalive fetch, else XHR.
    function flush() {
      win.clearTimeout(timer);
      timer = 0;
      fails = 0;
      while (q.length) {
        var body = JSON.stringify({ events: take() });
        var sent = false;
        try {
          sent = nav.sendBeacon && nav.sendBeacon(url, body);
        } catch (e) {}
        if (sent) continue;
        try {
          win.fetch(url, init(body))['catch'](noop);
        } catch (e) {
          xhr(body, noop);
        }
      }
    }

    function wrap(m) {
      var h = win.history;
      var orig = h && h[m];
      if (typeof orig != 'function') return;
      var moved = safe(function () {
        pageview();
      });
      h[m] = function () {
        // The page's own call: its result and its errors are the page's.
        var r = orig.apply(this, arguments);
        moved();
        return r;
      };
    }

    function on(target, type, fn) {
      target.addEventListener(type, safe(fn));
    }

    function start() {
      on(doc, 'visibilitychange', function () {
        if (doc.visibilityState == 'hidden') flush();
      });
      on(win, 'pagehide', flush);
      on(win, 'popstate', function () {
        pageview();
      });
      if (cfg.hash) on(win, 'hashchange', function () {
        pageview();
      });
      // Back from the back/forward cache: a new view of the page.
      on(win, 'pageshow', function (e) {
        if (e && e.persisted) pageview(true);
      });
      wrap('pushState');
      wrap('replaceState');
      // A prerendered page counts once it is shown, if ever.
      if (doc.prerendering) on(doc, 'prerenderingchange', function () {
        pageview();
      });
      else pageview();
    }

    // footfall('event', name, {props, revenue}) and footfall('pageview', {props}).
    function api(cmd, a, b) {
      if (cmd == 'event' && typeof a == 'string' && NAME_RE.test(a)) track(a, b);
      else if (cmd == 'pageview') pageview(true, a);
    }

    return { api: safe(api), start: safe(start), flush: safe(flush), queue: function () { return q; } };
  }

  // Reads the snippet's <script data-*> attributes, replaces the stub queue with the real
  // function, counts the first pageview and replays what the page queued before.
  function boot(win) {
    var doc = win.document;
    var s = doc.currentScript || doc.querySelector('script[data-site]');
    var prev = win.footfall;
    if (!s || (prev && prev.ff)) return; // no snippet, or loaded twice
    var at = function (n) {
      return s.getAttribute('data-' + n);
    };
    var site = at('site');
    if (!site || !SITE_RE.test(site)) return;
    var t = create(win, {
      site: site,
      // The gateway that served this file, unless data-api says otherwise.
      api: at('api') || String(s.src).replace(/[^/?#]*([?#].*)?$/, 'collect'),
      hash: flag(at('hash')),
      cookieless: flag(at('cookieless')),
      dnt: flag(at('respect-dnt')),
      sample: +at('sample') || 1,
      domain: at('cookie-domain')
    });
    var pending = (prev && prev.q) || [];
    win.footfall = t.api;
    t.api.ff = 1;
    t.start();
    for (var i = 0; i < pending.length; i++) t.api.apply(null, pending[i]);
  }

  safe(function () {
    if (root.document) boot(root);
  })();
  if (typeof module == 'object' && module && module.exports) module.exports = { create: create, boot: boot, fnv: fnv };
})(typeof window != 'undefined' ? window : this);
