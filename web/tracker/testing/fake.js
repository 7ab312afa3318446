// A fake browser window for the tracker's tests: a location and history, a cookie jar,
// localStorage, a manual clock for timers, and a gateway stub that records every
// request made through sendBeacon, fetch or XMLHttpRequest.
'use strict';

const path = require('node:path');
const { webcrypto } = require('node:crypto');

/** Both builds, so that minifying is tested too: [label, module]. */
const BUILDS = [
  ['src', require(path.join(__dirname, '..', 'footfall.src.js'))],
  ['min', require(path.join(__dirname, '..', 'footfall.js'))],
];

const API = 'https://gw.example.net/v1/collect';
const SITE = 'shop';

/** Lets promise callbacks (fetch answers) run. */
function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

class Emitter {
  constructor() {
    this.listeners = {};
  }
  addEventListener(type, fn) {
    (this.listeners[type] = this.listeners[type] || []).push(fn);
  }
  dispatch(type, event) {
    for (const fn of this.listeners[type] || []) fn(event || { type });
  }
}

/**
 * A window at `url`. Options: `cookies` (a jar shared between page loads), `storage`
 * (a Map, the same), `beacon` (false: no sendBeacon; 'refuse': it answers false),
 * `fetch` (false: none), `xhr` (false: none), `dnt`, `gpc`, `cookiesBlocked`, `title`.
 */
function fakeWindow(url = 'https://shop.example.com/', opts = {}) {
  const win = new Emitter();
  const doc = new Emitter();
  const cookies = opts.cookies || new Map();
  const storage = opts.storage || new Map();
  const clock = { now: 0, seq: 0, timers: new Map() };
  const requests = [];
  // The gateway: answer(request) -> {status, body, headers} or 'network' for an error.
  let answer = () => ({ status: 202, body: '{"accepted":1}' });

  let href = url;
  const location = {
    get href() {
      return href;
    },
    get protocol() {
      return new URL(href).protocol;
    },
  };
  function go(to) {
    href = new URL(to, href).href;
  }

  const record = (via, reqUrl, body, extra) => {
    const req = { via, url: reqUrl, body, events: JSON.parse(body).events, ...extra };
    requests.push(req);
    return req;
  };

  win.document = doc;
  win.location = location;
  win.screen = { width: 1280, height: 720 };
  win.crypto = webcrypto;
  win.localStorage = {
    getItem: (k) => (storage.has(k) ? storage.get(k) : null),
    setItem: (k, v) => storage.set(k, String(v)),
  };
  win.history = {
    pushState(state, title, to) {
      if (to != null) go(to);
    },
    replaceState(state, title, to) {
      if (to != null) go(to);
    },
  };
  win.setTimeout = (fn, ms) => {
    const id = ++clock.seq;
    clock.timers.set(id, { at: clock.now + (ms || 0), fn });
    return id;
  };
  win.clearTimeout = (id) => clock.timers.delete(id);

  doc.title = opts.title != null ? opts.title : 'Shop';
  doc.referrer = 'https://search.example.org/?q=shoes';
  doc.visibilityState = 'visible';
  doc.currentScript = null;
  Object.defineProperty(doc, 'cookie', {
    configurable: true,
    get() {
      if (opts.cookiesBlocked) return '';
      return [...cookies].map(([k, v]) => `${k}=${v.value}`).join('; ');
    },
    set(line) {
      if (opts.cookiesBlocked) return;
      const [pair, ...attrs] = line.split(/;\s*/);
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), { value: pair.slice(eq + 1), attrs });
    },
  });

  win.navigator = {
    language: 'en-IN',
    doNotTrack: opts.dnt ? '1' : null,
    globalPrivacyControl: !!opts.gpc,
  };
  if (opts.beacon !== false) {
    win.navigator.sendBeacon = (reqUrl, body) => {
      if (opts.beacon === 'refuse') return false;
      record('beacon', reqUrl, body);
      return true;
    };
  }
  if (opts.fetch !== false) {
    win.fetch = (reqUrl, init) => {
      const req = record('fetch', reqUrl, init.body, { init });
      const a = answer(req);
      if (a === 'network') return Promise.reject(new TypeError('Failed to fetch'));
      const headers = new Map(Object.entries(a.headers || {}));
      return Promise.resolve({
        status: a.status,
        headers: { get: (n) => (headers.has(n) ? headers.get(n) : null) },
        text: () => Promise.resolve(a.body || ''),
      });
    };
  }
  if (opts.xhr !== false) {
    win.XMLHttpRequest = class {
      open(method, reqUrl) {
        this.method = method;
        this.url = reqUrl;
        this.headers = {};
        this.readyState = 1;
      }
      setRequestHeader(k, v) {
        this.headers[k] = v;
      }
      getResponseHeader(n) {
        return (this.answer.headers || {})[n] || null;
      }
      send(body) {
        const req = record('xhr', this.url, body, { headers: this.headers, xhr: this });
        const a = answer(req);
        // The answer comes later, as a real one would.
        setImmediate(() => {
          this.answer = a === 'network' ? { status: 0 } : a;
          this.status = this.answer.status;
          this.responseText = this.answer.body || '';
          this.readyState = 4;
          this.onreadystatechange();
        });
      }
    };
  }

  return {
    win,
    doc,
    cookies,
    storage,
    clock,
    requests,
    go,
    /** Sets how the gateway answers: a function of the request, or one fixed answer. */
    answer(fn) {
      answer = typeof fn === 'function' ? fn : () => fn;
    },
    /** Every event sent so far, in order. */
    events() {
      return requests.flatMap((r) => r.events);
    },
    /** Advances the clock by `ms`, running each timer due and the promises it starts. */
    async advance(ms) {
      const end = clock.now + ms;
      for (;;) {
        await settle();
        let next = null;
        for (const [id, t] of clock.timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
        if (!next) break;
        clock.timers.delete(next[0]);
        clock.now = next[1].at;
        next[1].fn();
      }
      clock.now = end;
      await settle();
    },
    /** The delays of the timers pending now, shortest first. */
    pending() {
      return [...clock.timers.values()].map((t) => t.at - clock.now).sort((a, b) => a - b);
    },
  };
}

/** The config `boot` would read from a snippet, with the test defaults. */
function config(extra = {}) {
  return { site: SITE, api: API, ...extra };
}

/** A tracker on a fake window, started (first pageview queued). */
function started(mod, url, opts = {}, cfg = {}) {
  const page = fakeWindow(url, opts);
  const tracker = mod.create(page.win, config(cfg));
  tracker.start();
  return { ...page, tracker, api: tracker.api };
}

module.exports = { BUILDS, API, SITE, fakeWindow, config, started, settle };
