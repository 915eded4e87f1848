/*! Herald notification widget v1 | served at /widget/v1/herald.js | no dependencies */
/*
 * Herald.mount(element, options) renders a bell with an unread badge; its panel lists the
 * user's notifications. Herald.unmount(element) removes it. Guide: api_docs/widget.md.
 *
 * Safety rules this file keeps: notification content only ever goes into textContent or
 * attributes, never HTML; only http(s) links are clickable; styles are constructable
 * stylesheets adopted by a shadow root (a strict CSP allows them); no eval of any kind.
 */
(() => {
  "use strict";
  if (window.Herald && window.Herald.mount) return; // the script was included twice

  const VERSION = "1.0.0";
  const BACKOFF_BASE = 500; // ms; reconnects wait a full-jitter backoff
  const BACKOFF_CAP = 30000;
  const FAILS_BEFORE_POLLING = 3; // failed sockets in a row, while REST answers, mean "blocked"
  const WS_RETRY_POLLS = 3; // while polling, try the socket again every third poll
  const FIRST_FRAME_TIMEOUT = 10000; // an open socket that says nothing counts as failed
  const PING_EVERY = 25000;
  const SILENCE_LIMIT = 65000; // no frame (not even a pong) for this long: the socket is dead
  const SVG = "http://www.w3.org/2000/svg";
  // Feather icons (MIT): bell, x, check-circle.
  const ICONS = {
    bell: ["M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9", "M13.73 21a2 2 0 0 1-3.46 0"],
    close: ["M18 6 6 18", "M6 6l12 12"],
    done: ["M22 11.08V12a10 10 0 1 1-5.93-9.14", "M22 4 12 14.01l-3-3"],
  };

  // English: every UI string, and the fallback for each. Other languages are catalogues with
  // exactly these keys, served by Herald at /widget/v1/locales/<language>.json.
  const EN = {
    title: "Notifications",
    bellUnread: "Notifications, {n} unread",
    markAll: "Mark all as read",
    close: "Close",
    empty: "You're all caught up",
    emptyHint: "New notifications will show up here.",
    loading: "Loading…",
    failed: "Notifications could not be loaded.",
    retry: "Try again",
    unread: "Unread: ",
    newOne: "New notification: {t}",
    newMany: "{n} new notifications",
    live: "Live",
    connecting: "Connecting…",
    offline: "Offline, reconnecting…",
    polling: "Checking every {n} s",
    forbidden: "This site may not show these notifications.",
    signedOut: "Signed out of notifications.",
    pushAsk: "Enable browser notifications",
    pushOn: "Browser notifications are on",
    pushDenied: "Notifications are blocked in this browser's settings.",
    pushFailed: "Browser notifications could not be turned on.",
    settings: "Settings",
  };
  // Languages written right to left: the widget's root gets dir="rtl".
  const RTL = /^(ar|arc|ckb|dv|fa|he|iw|ks|ps|sd|syr|ug|ur|yi)$/;
  // herald-settings.js's Subresource Integrity value (a test keeps them in step).
  const SETTINGS = "sha256-XQTLmtRt9qpOxo9OKJ4fyoS+Ml/dlQOcMefPyyKzfXU=";

  const CSS = `
:host{all:initial!important;display:inline-block!important;position:relative!important;
  vertical-align:middle!important;color:inherit!important}
.root{--_accent:var(--herald-accent,var(--herald-brand,#4f46e5));--_on-accent:var(--herald-on-accent,#fff);
  --_bg:var(--herald-background,#fff);--_fg:var(--herald-text,#111827);--_muted:var(--herald-muted,#6b7280);
  --_line:var(--herald-border,#e5e7eb);--_hover:var(--herald-hover,#f3f4f6);--_badge:var(--herald-badge,#dc2626);
  --_radius:var(--herald-radius,12px);--_link:var(--_accent);font:14px/1.45 var(--herald-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);
  -webkit-font-smoothing:antialiased}
:host([mode=dark]) .root{--_bg:var(--herald-background,#111827);--_fg:var(--herald-text,#f3f4f6);
  --_muted:var(--herald-muted,#9ca3af);--_line:var(--herald-border,#374151);--_hover:var(--herald-hover,#1f2937);
  --_link:color-mix(in srgb,var(--_accent) 55%,#fff)}
@media (prefers-color-scheme:dark){:host([mode=auto]) .root{--_bg:var(--herald-background,#111827);
  --_fg:var(--herald-text,#f3f4f6);--_muted:var(--herald-muted,#9ca3af);--_line:var(--herald-border,#374151);
  --_hover:var(--herald-hover,#1f2937);--_link:color-mix(in srgb,var(--_accent) 55%,#fff)}}
*{box-sizing:border-box}
[hidden]{display:none!important}
button,a{font:inherit;color:inherit;cursor:pointer}
button{background:none;border:0;margin:0;padding:0}
:focus-visible{outline:2px solid var(--_accent);outline-offset:2px}
svg{display:block;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.sr{position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.bell{position:relative;display:grid;place-items:center;width:40px;height:40px;border-radius:999px;color:var(--herald-bell)}
.bell:hover,.bell[aria-expanded=true]{background:rgba(127,127,127,.14)}
.bell svg{width:22px;height:22px}
.badge{position:absolute;top:2px;inset-inline-end:1px;min-width:18px;height:18px;padding:0 5px;border-radius:9px;
  background:var(--_badge);color:#fff;font-size:11px;font-weight:600;line-height:18px;text-align:center;
  box-shadow:0 0 0 2px var(--herald-badge-ring,#fff)}
.panel{position:absolute;top:calc(100% + 8px);inset-inline-end:0;z-index:var(--herald-z,2147483000);display:flex;
  flex-direction:column;width:var(--herald-width,380px);max-width:calc(100vw - 16px);max-height:min(520px,75vh);
  background:var(--_bg);color:var(--_fg);border:1px solid var(--_line);border-radius:var(--_radius);
  box-shadow:0 12px 32px rgba(15,23,42,.18),0 2px 6px rgba(15,23,42,.08);overflow:hidden;text-align:start}
.panel:focus{outline:none}
.root.start .panel{inset-inline-end:auto;inset-inline-start:0}
@media (prefers-reduced-motion:no-preference){.panel{animation:in .14s ease-out}
  @keyframes in{from{opacity:0;transform:translateY(-4px)}}}
@media (max-width:480px){.panel{position:fixed;top:60px;left:8px;right:8px;width:auto}}
.head{display:flex;align-items:center;gap:8px;padding:12px;padding-inline-start:16px;border-bottom:1px solid var(--_line)}
h2{flex:1;margin:0;font-size:15px;font-weight:650;letter-spacing:-.01em}
.count{margin-inline-start:6px;padding:1px 7px;border-radius:999px;background:var(--_accent);color:var(--_on-accent);
  font-size:11px;font-weight:600;vertical-align:2px}
.all{margin-inline-start:auto;padding:5px 8px;border-radius:6px;color:var(--_link);font-size:13px;font-weight:550}
.all:hover{background:var(--_hover)}
.all:disabled{color:var(--_muted);cursor:default;background:none;opacity:.7}
.x{display:grid;place-items:center;width:28px;height:28px;border-radius:6px;color:var(--_muted)}
.x:hover{background:var(--_hover);color:var(--_fg)}
.x svg{width:16px;height:16px}
.body{flex:1;min-height:0;overflow-y:auto;overscroll-behavior:contain}
ul{list-style:none;margin:0;padding:0}
li+li{border-top:1px solid var(--_line)}
.item{position:relative;display:flex;gap:10px;width:100%;padding:12px 16px;padding-inline-start:14px;text-align:start;
  text-decoration:none;color:var(--_fg)}
.item:hover{background:var(--_hover)}
.item:focus-visible{outline-offset:-2px}
.dot{flex:none;width:8px;height:8px;margin-top:6px;border-radius:50%}
.unread{background:var(--_hover);background:color-mix(in srgb,var(--_accent) 7%,var(--_bg))}
.unread:hover{background:color-mix(in srgb,var(--_accent) 12%,var(--_bg))}
.unread .dot{background:var(--_accent)}
.text{display:flex;flex-direction:column;gap:2px;min-width:0}
.t,.m{unicode-bidi:plaintext}
.t{font-weight:600;overflow-wrap:anywhere}
.read .t{font-weight:500}
.m{color:var(--_muted);overflow:hidden;overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:3;
  -webkit-box-orient:vertical}
.sr+.m{color:var(--_fg)}
time{color:var(--_muted);font-size:12px}
.note{display:flex;flex-direction:column;align-items:center;gap:6px;padding:40px 24px;text-align:center;color:var(--_muted)}
.note svg{width:36px;height:36px;margin-bottom:6px;color:var(--_accent);stroke-width:1.6}
.note strong{color:var(--_fg);font-size:15px;font-weight:600}
.more{padding:14px;text-align:center;color:var(--_muted);font-size:13px}
.retry{margin-top:6px;padding:6px 12px;border-radius:6px;border:1px solid var(--_line);color:var(--_fg)}
.retry:hover{background:var(--_hover)}
.push{display:flex;flex-direction:column;align-items:flex-start;gap:2px;padding:6px 16px;
  border-top:1px solid var(--_line);color:var(--_muted);font-size:12px}
.push .all{margin:0;margin-inline-start:-8px}
.all+.all{margin-inline-start:0}
.push span:empty{display:none}
.foot{display:flex;align-items:center;gap:6px;min-height:42px;padding:6px 8px;padding-inline-start:16px;border-top:1px solid var(--_line);
  color:var(--_muted);font-size:12px}
.state{width:7px;height:7px;border-radius:50%;background:#9ca3af}
.foot.live .state{background:#16a34a}
.foot.polling .state{background:#d97706}
.foot.forbidden .state,.foot.signedOut .state{background:#dc2626}
`;

  let sheet = null;
  const adopt = (root) => {
    if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      root.adoptedStyleSheets = [sheet];
    } else {
      // Older browsers: a <style> in the shadow root (a strict CSP blocks this one path).
      root.appendChild(el("style")).textContent = CSS;
    }
  };

  // --- small helpers --------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function icon(name) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (const d of ICONS[name]) {
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    }
    return svg;
  }

  const fill = (template, values) =>
    template.replace(/\{(\w)\}/g, (match, key) => (key in values ? values[key] : match));

  /** The notification's url if it is an absolute http(s) URL, else null (never clickable). */
  function safeUrl(value) {
    if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  /** A JWT's claims ({} when they cannot be read). */
  function claims(token) {
    try {
      return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) || {};
    } catch (_) {
      return {};
    }
  }

  /** Seconds until a JWT expires (null when it cannot be read: then the server decides). */
  function tokenTtl(token) {
    const exp = claims(token).exp;
    return typeof exp === "number" ? exp - Date.now() / 1000 : null;
  }

  /** ``raw`` as a canonical BCP 47 tag (de_at -> de-AT), or "" when it is not one. */
  function canonical(raw) {
    try {
      return Intl.getCanonicalLocales(String(raw || "").trim().replace(/_/g, "-"))[0] || "";
    } catch (_) {
      return "";
    }
  }

  // Catalogues asked for on this page: "<api> <language>" -> promise of its strings (or null).
  const catalogues = new Map();

  function catalogue(api, language) {
    const key = `${api} ${language}`;
    if (language === "en") return Promise.resolve(EN);
    if (!catalogues.has(key)) {
      const url = `${api}/widget/v1/locales/${encodeURIComponent(language)}.json`;
      const loading = fetch(url, { mode: "cors", credentials: "omit" })
        .then((response) => (response.ok ? response.json() : null))
        .catch(() => {
          catalogues.delete(key); // a network failure: the next mount asks again
          return null;
        });
      catalogues.set(key, loading);
    }
    return catalogues.get(key);
  }

  /** Strings, direction and Intl formats for ``tag``: English < the catalogue (null: none) <
   * the tenant's overrides for the language, then for each longer prefix. */
  function localeFor(tag, found, overrides) {
    const parts = tag.split("-");
    const strings = { ...EN };
    const layer = (source) => {
      for (const key of Object.keys(source || {})) {
        if (typeof source[key] == "string") strings[key] = source[key];
      }
    };
    overrides = overrides && typeof overrides === "object" ? overrides : {};
    if (!found) layer(overrides.en);
    layer(found);
    for (let n = 1; n <= parts.length; n++) layer(overrides[parts.slice(0, n).join("-")]);
    try {
      return {
        strings,
        lang: found ? tag : "en",
        rtl: RTL.test(parts[0]),
        time: new Intl.RelativeTimeFormat(tag, { numeric: "auto" }),
        date: new Intl.DateTimeFormat(tag, { dateStyle: "medium", timeStyle: "short" }),
      };
    } catch (_) {
      return localeFor("en", EN, overrides);
    }
  }

  const UNITS = [
    ["year", 31536000],
    ["month", 2592000],
    ["week", 604800],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];

  function relative(format, date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
    }
    return format.format(0, "second");
  }

  /** Run ``fn(store)`` on a database shared with herald-sw.js; resolves with its result. */
  const store = (name, mode, fn) =>
    new Promise((resolve, reject) => {
      const table = name == "herald" ? "pending-reads" : name;
      const open = indexedDB.open(name, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(table);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction(table, mode);
        const request = fn(tx.objectStore(table));
        tx.oncomplete = tx.onerror = tx.onabort = () => {
          db.close();
          if (tx.error) reject(tx.error);
          else resolve(request.result);
        };
      };
    });

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.code = error.code || "error";
      this.details = error.details;
    }
  }

  const validNotification = (n) =>
    n && typeof n === "object" && Number.isInteger(n.id) && n.id > 0;

  // --- the widget -----------------------------------------------------------------------------

  let serial = 0;
  const mounted = new WeakMap();
  let settingsFile;

  class Widget {
    constructor(target, options) {
      const api = typeof options.apiUrl === "string" ? options.apiUrl.trim().replace(/\/+$/, "") : "";
      if (!/^https?:\/\/[^/?#]+$/i.test(api)) {
        throw new TypeError("Herald.mount: apiUrl must be an origin such as https://acme.herald.example");
      }
      if (typeof options.getToken !== "function") {
        throw new TypeError("Herald.mount: getToken must be a function returning a promise of a token");
      }
      this.target = target;
      this.options = options;
      this.api = api;
      this.wsUrl = api.replace(/^http/i, "ws") + "/ws/v1/notifications";
      this.pageSize = Math.min(100, Math.max(5, options.pageSize | 0 || 20));
      this.pollEvery = Math.max(1, Number(options.pollInterval) || 20) * 1000;
      // English until the locale's catalogue arrives; dates and direction follow it at once.
      this.wanted = canonical(options.locale);
      this.locale = localeFor(this.wanted || canonical(navigator.language) || "en", null);
      if (this.wanted) catalogue(api, this.wanted.split("-")[0]); // ahead of /me/widget
      this.items = new Map(); // id -> {n, li, item}
      this.order = []; // ids, newest first
      this.count = 0;
      this.maxId = null; // highest id seen: reconnects resume after it
      this.cursor = null;
      this.loaded = false; // the first page has been read
      this.loading = false;
      this.failures = 0; // sockets in a row that failed before their first frame
      this.timers = new Set();
      this.aborter = new AbortController();
      this.pending = [];
      this.id = ++serial;
      this.build();
      this.listen();
      if (options.theme) this.applyTheme(options.theme);
      this.start();
    }

    t(key, values) {
      const text = this.locale.strings[key];
      return values ? fill(text, values) : text;
    }

    // --- DOM ------------------------------------------------------------------------------------

    build() {
      this.host = document.createElement("herald-widget");
      this.shadow = this.host.attachShadow({ mode: "open" });
      adopt(this.shadow);
      const root = (this.root = el("div", "root"));
      const panelId = `herald-panel-${this.id}`;

      const bell = (this.bell = el("button", "bell"));
      bell.type = "button";
      bell.setAttribute("aria-haspopup", "dialog");
      bell.setAttribute("aria-expanded", "false");
      bell.setAttribute("aria-controls", panelId);
      bell.setAttribute("part", "bell");
      this.badge = el("span", "badge");
      this.badge.setAttribute("aria-hidden", "true");
      this.badge.hidden = true;
      bell.append(icon("bell"), this.badge);

      const panel = (this.panel = el("div", "panel"));
      panel.id = panelId;
      panel.hidden = true;
      panel.tabIndex = -1;
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-modal", "false");
      panel.setAttribute("part", "panel");
      const heading = (this.heading = el("h2", null, this.t("title")));
      heading.id = `${panelId}-title`;
      panel.setAttribute("aria-labelledby", heading.id);
      this.countChip = el("span", "count");
      this.countChip.setAttribute("aria-hidden", "true");
      heading.append(this.countChip);
      this.markAll = el("button", "all", this.t("markAll"));
      this.markAll.type = "button";
      this.closer = el("button", "x");
      this.closer.type = "button";
      this.closer.setAttribute("aria-label", this.t("close"));
      this.closer.append(icon("close"));
      const head = el("div", "head");
      head.append(heading, this.closer);

      this.body = el("div", "body");
      this.list = el("ul");
      this.list.setAttribute("aria-label", this.t("title"));
      this.note = el("div", "note");
      this.more = el("div", "more");
      this.more.setAttribute("aria-hidden", "true");
      this.body.append(this.list, this.note, this.more);

      this.pushRow = el("div", "push");
      this.pushRow.hidden = true;
      this.pushText = el("span");
      this.pushText.setAttribute("role", "status");
      this.pushButton = el("button", "all", this.t("pushAsk"));
      this.pushButton.type = "button";
      this.pushRow.append(this.pushButton, this.pushText);

      this.foot = el("div", "foot");
      this.stateText = el("span");
      this.gear = el("button", "all", this.t("settings"));
      this.gear.type = "button";
      this.foot.append(el("span", "state"), this.stateText, this.markAll, this.gear);
      panel.append(head, this.body, this.pushRow, this.foot);

      this.live = el("div", "sr");
      this.live.setAttribute("aria-live", "polite");
      this.live.setAttribute("role", "status");

      root.append(bell, panel, this.live);
      this.direction();
      this.shadow.appendChild(root);
      this.target.appendChild(this.host);
      this.setCount(0);
      this.setState("connecting");
      this.renderNote();
    }

    direction() {
      this.root.dir = this.locale.rtl ? "rtl" : "ltr";
      this.root.lang = this.locale.lang;
      if (this.panel && !this.panel.hidden) this.place();
    }

    applyTheme(theme) {
      if (typeof theme === "string") theme = { mode: theme };
      const names = {
        accent: "--herald-accent",
        onAccent: "--herald-on-accent",
        background: "--herald-background",
        text: "--herald-text",
        muted: "--herald-muted",
        border: "--herald-border",
        radius: "--herald-radius",
        font: "--herald-font",
        badge: "--herald-badge",
        bell: "--herald-bell",
      };
      for (const key of Object.keys(names)) {
        if (typeof theme[key] === "string") this.root.style.setProperty(names[key], theme[key]);
      }
      if (/^(light|dark|auto)$/.test(theme.mode)) this.host.setAttribute("mode", theme.mode);
    }

    listen() {
      const on = (node, type, fn, options) => {
        node.addEventListener(type, fn, options);
        this.timers.add(() => node.removeEventListener(type, fn, options));
      };
      on(this.bell, "click", () => (this.panel.hidden ? this.open() : this.close(true)));
      on(this.closer, "click", () => this.close(true));
      on(this.markAll, "click", () => this.readAll());
      on(this.list, "click", (event) => this.select(event));
      on(this.pushButton, "click", () => this.enablePush());
      on(this.gear, "click", () => this.settings());
      if (navigator.serviceWorker) {
        on(navigator.serviceWorker, "message", (event) => {
          if (this.worker && event.data && event.data.type === "herald:read") this.readPending();
        });
      }
      on(this.root, "keydown", (event) => this.key(event));
      on(this.root, "focusout", (event) => {
        const next = event.relatedTarget;
        if (next && !this.root.contains(next) && next !== this.host) this.close(false);
      });
      on(document, "pointerdown", (event) => {
        if (!this.panel.hidden && !event.composedPath().includes(this.host)) this.close(false);
      }, true);
      on(window, "online", () => {
        if (!this.ws) this.reconnect(0);
      });
      if (typeof IntersectionObserver === "function") {
        this.observer = new IntersectionObserver((entries) => {
          if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
        }, { root: this.body, rootMargin: "160px" });
        this.observer.observe(this.more);
      } else {
        on(this.body, "scroll", () => {
          const b = this.body;
          if (b.scrollTop + b.clientHeight > b.scrollHeight - 160) this.loadMore();
        });
      }
    }

    emit(type, detail, cancelable) {
      const event = new CustomEvent(`herald:${type}`, { detail, bubbles: true, cancelable: !!cancelable });
      return this.target.dispatchEvent(event);
    }

    // --- opening, closing, keyboard ---------------------------------------------------------------

    open() {
      if (!this.panel.hidden || this.dead) return;
      this.place();
      this.panel.hidden = false;
      this.bell.setAttribute("aria-expanded", "true");
      this.panel.focus();
      if (!this.loaded && !this.loading) this.loadFirst();
      if (!this.worker) this.findWorker(); // registered after the mount
      this.refreshTimes();
      this.tick = setInterval(() => this.refreshTimes(), 30000);
      this.emit("open");
    }

    place() {
      // Open towards the wider side of the viewport, unless the page chose a side. "start" and
      // "end" follow the widget's direction: in right-to-left, "start" is the right edge.
      const box = this.bell.getBoundingClientRect();
      const leftHalf = box.left + box.width / 2 < innerWidth / 2;
      const align = this.options.align || (leftHalf !== this.locale.rtl ? "start" : "end");
      this.root.classList.toggle("start", align === "start");
    }

    close(returnFocus) {
      if (this.panel.hidden) return;
      this.panel.hidden = true;
      this.bell.setAttribute("aria-expanded", "false");
      clearInterval(this.tick);
      if (returnFocus) this.bell.focus();
      this.emit("close");
    }

    key(event) {
      if (event.key === "Escape" && !this.panel.hidden) {
        event.stopPropagation();
        this.close(true);
        return;
      }
      const moves = { ArrowDown: 1, ArrowUp: -1, Home: -Infinity, End: Infinity };
      if (!(event.key in moves) || this.panel.hidden) return;
      const items = [...this.list.querySelectorAll(".item")];
      if (!items.length) return;
      const at = items.indexOf(this.shadow.activeElement);
      const step = moves[event.key];
      let next = Math.abs(step) === Infinity ? (step < 0 ? 0 : items.length - 1) : at + step;
      if (at < 0) next = step < 0 ? items.length - 1 : 0;
      items[Math.max(0, Math.min(items.length - 1, next))].focus();
      event.preventDefault();
    }

    // --- state and rendering ------------------------------------------------------------------------

    setCount(count) {
      if (!Number.isInteger(count) || count < 0) return;
      const changed = count !== this.count;
      this.count = count;
      this.badge.hidden = count === 0;
      this.badge.textContent = count > 99 ? "99+" : String(count);
      this.countChip.hidden = count === 0;
      this.countChip.textContent = String(count);
      this.markAll.disabled = count === 0;
      this.labelCount();
      if (changed) this.emit("unread", { count });
    }

    labelCount() {
      const count = this.count;
      this.bell.setAttribute("aria-label", count ? this.t("bellUnread", { n: count }) : this.t("title"));
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      this.labelState();
      this.emit("connection", { state });
    }

    labelState() {
      this.foot.className = `foot ${this.state}`;
      this.stateText.textContent = this.t(this.state, { n: Math.round(this.pollEvery / 1000) });
    }

    /** Merge notifications (from a page, a poll or the socket); returns those new to us. */
    merge(list) {
      const fresh = [];
      for (const n of list) {
        if (!validNotification(n)) continue;
        if (this.maxId === null || n.id > this.maxId) this.maxId = n.id;
        const known = this.items.get(n.id);
        if (known && n.archived) {
          known.li.remove();
          this.items.delete(n.id);
          this.order.splice(this.order.indexOf(n.id), 1);
        } else if (known) {
          known.n = n;
          this.paint(known);
        }
        if (known) continue;
        if (n.archived) continue;
        const entry = { n };
        this.items.set(n.id, entry);
        this.insert(entry);
        fresh.push(n);
      }
      this.renderNote();
      return fresh;
    }

    insert(entry) {
      const id = entry.n.id;
      let at = this.order.findIndex((other) => other < id);
      if (at < 0) at = this.order.length;
      this.order.splice(at, 0, id);
      this.draw(entry);
      const before = at + 1 < this.order.length ? this.items.get(this.order[at + 1]).li : null;
      this.list.insertBefore(entry.li, before);
    }

    draw(entry) {
      const n = entry.n;
      const url = safeUrl(n.url);
      const item = url ? el("a", "item") : el("button", "item");
      if (url) {
        item.href = url;
        if (this.options.linkTarget === "_blank") {
          item.target = "_blank";
          item.rel = "noopener noreferrer";
        }
      } else {
        item.type = "button";
      }
      item.dataset.id = String(n.id);
      const text = el("span", "text");
      entry.sr = el("span", "sr", this.t("unread"));
      text.append(entry.sr);
      const title = typeof n.title === "string" ? n.title : "";
      const message = typeof n.message === "string" ? n.message : "";
      if (title) text.append(el("span", "t", title));
      if (message) text.append(el("span", "m", message));
      const when = new Date(n.created_at);
      if (!isNaN(when)) {
        entry.time = el("time", null, relative(this.locale.time, when));
        entry.time.dateTime = when.toISOString();
        entry.time.title = this.locale.date.format(when);
        entry.when = when;
        text.append(entry.time);
      }
      const dot = el("span", "dot");
      dot.setAttribute("aria-hidden", "true");
      item.append(dot, text);
      entry.item = item;
      entry.li = el("li");
      entry.li.append(item);
      this.paint(entry);
    }

    paint(entry) {
      const unread = !entry.n.is_read;
      entry.item.classList.toggle("unread", unread);
      entry.item.classList.toggle("read", !unread);
      entry.sr.hidden = !unread;
    }

    refreshTimes() {
      for (const entry of this.items.values()) {
        if (entry.time) entry.time.textContent = relative(this.locale.time, entry.when);
      }
    }

    renderNote(failed) {
      const note = this.note;
      note.textContent = "";
      this.more.textContent = "";
      if (failed) {
        const retry = el("button", "retry", this.t("retry"));
        retry.type = "button";
        retry.addEventListener("click", () => (this.loaded ? this.loadMore() : this.loadFirst()));
        note.append(el("span", null, this.t("failed")), retry);
      } else if (this.order.length === 0 && this.loaded) {
        note.append(icon("done"), el("strong", null, this.t("empty")), el("span", null, this.t("emptyHint")));
      } else if (this.loading || !this.loaded) {
        (this.order.length ? this.more : note).textContent = this.t("loading");
      }
      note.hidden = !note.firstChild;
    }

    announce(list) {
      for (const n of list) {
        if (!n.is_read) this.pending.push(n);
        this.emit("notification", { notification: n });
      }
      if (!this.pending.length || this.announcing) return;
      this.announcing = setTimeout(() => {
        const batch = this.pending.splice(0);
        this.announcing = null;
        const first = batch[0];
        this.live.textContent = "";
        this.live.textContent =
          batch.length > 1
            ? this.t("newMany", { n: batch.length })
            : this.t("newOne", { t: first.title || first.message || "" });
      }, 400);
    }

    // --- REST -------------------------------------------------------------------------------------

    /** A usable token: the cached one unless it is about to expire; else getToken() once,
     * shared by every caller waiting meanwhile. */
    token() {
      if (this.tokenValue) {
        const ttl = tokenTtl(this.tokenValue);
        if (ttl === null || ttl > 10) return Promise.resolve(this.tokenValue);
      }
      if (!this.tokenPromise) {
        this.tokenPromise = Promise.resolve()
          .then(() => this.options.getToken())
          .then((value) => {
            const token = typeof value === "string" ? value : value && value.token;
            if (typeof token !== "string" || !token) {
              throw new TypeError("Herald: getToken() must resolve to a token (or {token})");
            }
            this.tokenValue = token;
            this.subscribeTabs(token);
            return token;
          })
          .finally(() => (this.tokenPromise = null));
      }
      return this.tokenPromise;
    }

    /** Call the API; on 401 get a new token once and retry. Rejects with ApiError or TypeError. */
    async call(method, path, options) {
      for (let attempt = 0; ; attempt++) {
        const token = await this.token();
        const response = await fetch(`${this.api}/api/v1${path}`, {
          method,
          headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...(options && options.body ? { "Content-Type": "application/json" } : {}) },
          body: options && options.body ? JSON.stringify(options.body) : undefined,
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          keepalive: !!(options && options.keepalive),
          signal: options && options.keepalive ? undefined : this.aborter.signal,
        });
        if (response.status === 401 && attempt === 0) {
          this.forget(token);
          continue;
        }
        const body = await response.json().catch(() => null);
        if (!response.ok) throw new ApiError(response.status, body);
        return body;
      }
    }

    /** Drop a token the server refused, unless another caller has already replaced it. */
    forget(token) {
      if (this.tokenValue === token) this.tokenValue = null;
    }

    async start() {
      this.fetchBranding();
      this.loadCount();
      this.connect();
      this.findWorker();
    }

    /** Branding and overrides from Herald; then the locale: the page's, else the user's, else
     * the browser's. */
    async fetchBranding() {
      let brand = null;
      try {
        brand = await this.call("GET", "/me/widget");
      } catch (error) {
        this.failed(error);
      }
      if (this.dead) return;
      brand = brand || {};
      if (/^#[0-9a-f]{6}$/i.test(brand.brand_color || "")) {
        this.root.style.setProperty("--herald-brand", brand.brand_color);
      }
      this.strings = brand.strings;
      this.useLocale(this.wanted || brand.locale);
    }

    /** Switch to ``tag`` ("": the browser's language) once its catalogue is here. */
    async useLocale(tag) {
      tag = canonical(tag) || canonical(navigator.language) || "en";
      const found = await catalogue(this.api, tag.split("-")[0]);
      if (!this.dead) this.relabel(localeFor(tag, found, this.strings));
    }

    /** The settings view: herald-settings.js, loaded once, called with the widget. */
    async settings() {
      try {
        settingsFile = settingsFile || new Promise((resolve, reject) => {
          const script = el("script");
          let url = `${this.api}/widget/v1/herald-settings.js`;
          const types = window.trustedTypes;
          if (types) url = types.createPolicy("herald", { createScriptURL: () => url }).createScriptURL("");
          addEventListener("herald-settings-ready", (event) => resolve(event.detail), { once: true });
          script.onerror = reject;
          script.crossOrigin = "anonymous";
          script.integrity = SETTINGS;
          script.src = url;
          document.head.append(script);
        });
        (await settingsFile)(this);
      } catch (error) {
        settingsFile = null;
        this.emit("error", { code: "network", message: "herald-settings.js not loaded" });
      }
    }

    /** The service worker's fallback title, in this language. */
    keepTitle() {
      const title = this.locale.strings.pushTitle || "";
      if (this.worker) store("herald-strings", "readwrite", (s) => s.put(title, "pushTitle")).catch(() => 0);
    }

    relabel(locale) {
      // The locale's strings arrived after the first paint: redo the texts.
      this.locale = locale;
      this.direction();
      this.heading.firstChild.textContent = this.t("title");
      this.list.setAttribute("aria-label", this.t("title"));
      this.markAll.textContent = this.t("markAll");
      this.pushButton.textContent = this.t("pushAsk");
      this.gear.textContent = this.t("settings");
      this.keepTitle();
      if (this.pushState) this.pushText.textContent = this.t(this.pushState);
      this.closer.setAttribute("aria-label", this.t("close"));
      for (const entry of this.items.values()) {
        entry.sr.textContent = this.t("unread");
        if (entry.time) entry.time.title = locale.date.format(entry.when);
      }
      this.labelCount();
      this.labelState();
      this.refreshTimes();
      this.renderNote();
    }

    async loadCount() {
      try {
        const body = await this.call("GET", "/me/notifications/unread_count");
        if (!this.dead && body) this.setCount(body.count);
        return true;
      } catch (error) {
        this.failed(error);
        return false;
      }
    }

    page(cursor) {
      const query = `?limit=${this.pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      return this.call("GET", `/me/notifications${query}`);
    }

    async loadFirst() {
      this.loading = true;
      this.renderNote();
      try {
        const body = await this.page(null);
        if (this.dead) return;
        this.loaded = true;
        this.cursor = body.next_cursor || null;
        this.merge(body.results || []);
        this.loading = false;
        this.renderNote();
        if (this.cursor) this.later(() => this.kick(), 50);
      } catch (error) {
        this.loading = false;
        if (!this.failed(error)) this.renderNote(true);
      }
    }

    async loadMore() {
      if (!this.loaded || !this.cursor || this.loading || this.panel.hidden) return;
      this.loading = true;
      this.renderNote();
      try {
        const body = await this.page(this.cursor);
        if (this.dead) return;
        this.cursor = body.next_cursor || null;
        this.merge(body.results || []);
        this.loading = false;
        this.renderNote();
        if (this.cursor) this.later(() => this.kick(), 50);
      } catch (error) {
        this.loading = false;
        if (!this.failed(error)) this.renderNote(true);
      }
    }

    /** Load the next page when its sentinel is in (or near) view: new rows may not fill the
     * panel, and the observer only reports changes. */
    kick() {
      const body = this.body.getBoundingClientRect();
      const more = this.more.getBoundingClientRect();
      if (more.top < body.bottom + 160) this.loadMore();
    }

    /** Report an error (state and ``herald:error``); true when it is to be ignored (the widget
     * is gone, or the request was aborted by unmount). */
    failed(error) {
      if (this.dead || (error && error.name === "AbortError")) return true;
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        this.setState(error.status === 401 ? "signedOut" : "forbidden");
        this.emit("error", { code: error.code, status: error.status, message: error.message });
        return false;
      }
      this.emit("error", { code: "network", message: String((error && error.message) || error) });
      return false;
    }

    select(event) {
      const item = event.target.closest(".item");
      if (!item) return;
      const entry = this.items.get(Number(item.dataset.id));
      if (!entry) return;
      const url = safeUrl(entry.n.url);
      const proceed = this.emit("select", { notification: entry.n, url }, true);
      if (!proceed) event.preventDefault();
      if (!entry.n.is_read) {
        this.markLocal([entry.n.id]);
        this.setCount(Math.max(0, this.count - 1));
        this.broadcast({ read: [entry.n.id] });
        this.call("PATCH", `/me/notifications/${entry.n.id}`, { body: { is_read: true }, keepalive: true })
          .catch((error) => {
            this.failed(error);
            this.loadCount();
          });
      }
      if (url && (!proceed || this.options.linkTarget !== "_blank")) this.close(false);
    }

    markLocal(ids) {
      for (const id of ids) {
        const entry = this.items.get(id);
        if (entry && !entry.n.is_read) {
          entry.n = { ...entry.n, is_read: true, read_at: entry.n.read_at || new Date().toISOString() };
          this.paint(entry);
        }
      }
    }

    async readAll() {
      const ids = [...this.items.keys()];
      this.markLocal(ids);
      this.setCount(0); // disables the button: keep the keyboard focus in the panel
      if (this.shadow.activeElement === this.markAll) this.panel.focus();
      this.broadcast({ all: true });
      try {
        await this.call("POST", "/me/notifications/read_all");
      } catch (error) {
        this.failed(error);
        this.loadCount();
      }
    }

    // --- browser notifications (web push through the page's herald-sw.js) ----------------------

    /** Find the page's herald-sw.js; with one, read what its clicks left and offer browser
     * notifications where possible and not refused. */
    async findWorker() {
      try {
        if (!window.PushManager || !window.Notification || Notification.permission === "denied") return;
        const all = await navigator.serviceWorker.getRegistrations();
        const worker = all.find((r) =>
          /\/herald-sw\.js(\?|$)/.test((r.active || r.waiting || r.installing || {}).scriptURL));
        if (!worker || this.worker || this.dead) return;
        this.worker = worker;
        this.keepTitle();
        this.readPending();
        this.pushRow.hidden = false;
        if (Notification.permission === "granted" && (await worker.pushManager.getSubscription())) {
          this.enablePush(); // idempotent; the server may have lost it
        }
      } catch (_) {
        // no service worker access (a sandboxed frame, a private window)
      }
    }

    async enablePush() {
      this.pushButton.disabled = true;
      let state = "pushOn";
      let error;
      try {
        if ((await Notification.requestPermission()) !== "granted") state = "pushDenied";
        else {
          const manager = this.worker.pushManager;
          let subscription = await manager.getSubscription();
          if (!subscription) {
            const key = (await this.call("GET", "/push/public-key")).vapid_public_key;
            const applicationServerKey = Uint8Array.from(
              atob(key.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
            subscription = await manager.subscribe({ userVisibleOnly: true, applicationServerKey });
          }
          await this.call("POST", "/me/push-subscriptions", { body: subscription.toJSON() });
        }
      } catch (failure) {
        if (failure instanceof ApiError ? this.failed(failure) : this.dead) return;
        state = "pushFailed";
        error = String((failure && failure.message) || failure);
      }
      this.pushState = state;
      this.pushText.textContent = this.t(state);
      this.pushButton.hidden = state !== "pushFailed";
      this.pushButton.disabled = false;
      this.emit("push", { state: { pushOn: "on", pushDenied: "denied" }[state] || "failed", error });
    }

    /** Mark read what was clicked in a browser notification (ids the service worker stored). */
    async readPending() {
      try {
        const ids = await store("herald", "readonly", (s) => s.getAllKeys());
        for (const id of ids) {
          try {
            await this.call("PATCH", `/me/notifications/${id}`, { body: { is_read: true } });
          } catch (error) {
            // Not this user's (or no such id): drop it. Anything else: try again next time.
            if (!(error instanceof ApiError && [400, 404].includes(error.status))) continue;
          }
          await store("herald", "readwrite", (s) => s.delete(id));
          this.markLocal([id]);
          this.broadcast({ read: [id] });
        }
        if (ids.length) this.loadCount();
      } catch (_) {
        // IndexedDB unavailable: nothing to read
      }
    }

    // --- live updates: WebSocket, then polling when it is blocked --------------------------------------

    later(fn, delay) {
      const handle = setTimeout(() => {
        this.timers.delete(cancel);
        fn();
      }, delay);
      const cancel = () => clearTimeout(handle);
      this.timers.add(cancel);
      return cancel;
    }

    reconnect(attempt) {
      if (this.dead) return;
      if (this.retry) this.retry();
      const delay = Math.random() * Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt);
      this.retry = this.later(() => {
        this.retry = null;
        this.connect();
      }, delay);
    }

    async connect() {
      if (this.dead || this.ws) return;
      let token;
      try {
        token = await this.token();
      } catch (error) {
        this.failed(error);
        this.setState("signedOut");
        return this.reconnect(Math.min(this.failures++, 8));
      }
      if (this.dead || this.ws) return;
      const url = this.wsUrl + (this.maxId !== null ? `?since=${this.maxId}` : "");
      let ws;
      try {
        ws = new WebSocket(url, ["bearer", token]);
      } catch (_) {
        return this.closed(1006, false); // refused by the page's CSP (connect-src)
      }
      this.ws = ws;
      let live = false;
      let heard = Date.now();
      const guard = this.later(() => ws.close(), FIRST_FRAME_TIMEOUT);
      const pinger = setInterval(() => {
        if (Date.now() - heard > SILENCE_LIMIT) ws.close();
        else if (ws.readyState === 1) ws.send('{"type":"ping"}');
      }, PING_EVERY);
      ws.onmessage = (event) => {
        heard = Date.now();
        if (!live) {
          live = true;
          guard();
          this.failures = 0;
          this.stopPolling();
          this.setState("live");
        }
        this.frame(event.data);
      };
      ws.onclose = (event) => {
        guard();
        clearInterval(pinger);
        if (this.ws !== ws) return;
        this.ws = null;
        if (event.code === 4401) this.forget(token); // expired: the next attempt asks getToken()
        if (!this.dead) this.closed(event.code, live);
      };
      this.closeSocket = () => {
        ws.onclose = ws.onmessage = null;
        clearInterval(pinger);
        ws.close(1000);
      };
    }

    frame(data) {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch (_) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if (frame.type === "unread_count") this.setCount(frame.count);
      else if (frame.type === "notification") this.announce(this.merge([frame.notification]));
      else if (frame.type === "read" && Array.isArray(frame.ids)) this.markLocal(frame.ids);
    }

    async closed(code, wasLive) {
      if (code === 4403) {
        this.setState("forbidden");
        this.emit("error", { code: "forbidden", status: 4403, message: "origin or tenant not allowed" });
        return; // permanent: this page's origin is not allowed (or the token is another tenant's)
      }
      if (code === 4400) this.maxId = null;
      if (code === 4429) return this.startPolling(); // over the plan's connection limit
      if (wasLive) this.failures = 0;
      else this.failures++;
      if (this.polling) return; // a trial connection while polling failed: keep polling
      if (this.failures >= FAILS_BEFORE_POLLING && this.failures % FAILS_BEFORE_POLLING === 0) {
        // Sockets keep failing. If REST answers, something blocks WebSockets: poll instead.
        if (await this.loadCount()) return this.startPolling();
      }
      if (this.state !== "signedOut") this.setState(wasLive ? "connecting" : "offline");
      this.reconnect(wasLive ? 0 : this.failures);
    }

    startPolling() {
      if (this.polling || this.dead) return;
      this.polling = true;
      this.setState("polling");
      const poll = async () => {
        if (!this.polling) return;
        await this.poll();
        if (this.polling) this.pollTimer = this.later(poll, this.pollEvery);
      };
      const trial = () => {
        if (!this.polling) return;
        this.connect();
        this.trialTimer = this.later(trial, this.pollEvery * WS_RETRY_POLLS);
      };
      poll();
      this.trialTimer = this.later(trial, this.pollEvery * WS_RETRY_POLLS);
    }

    stopPolling() {
      if (!this.polling) return;
      this.polling = false;
      if (this.pollTimer) this.pollTimer();
      if (this.trialTimer) this.trialTimer();
    }

    async poll() {
      try {
        const [count, body] = await Promise.all([
          this.call("GET", "/me/notifications/unread_count"),
          this.page(null),
        ]);
        if (this.dead) return;
        const results = body.results || [];
        const overlap = results.some((n) => this.items.has(n.id));
        if (this.loaded && !overlap && this.order.length && results.length) {
          // More arrived than a page holds: start the list again from this page.
          for (const id of this.order) this.items.get(id).li.remove();
          this.items.clear();
          this.order = [];
          this.cursor = body.next_cursor || null;
        } else if (!this.loaded) {
          this.cursor = body.next_cursor || null;
        }
        const before = this.maxId;
        this.loaded = true;
        const fresh = this.merge(results);
        this.announce(before === null ? [] : fresh.filter((n) => n.id > before));
        this.setCount(count.count);
        this.renderNote();
        if (this.state !== "polling") this.setState("polling");
      } catch (error) {
        this.failed(error);
      }
    }

    // --- other tabs of the same user ------------------------------------------------------------------

    subscribeTabs(token) {
      const subject = String(claims(token).sub || "");
      if (typeof BroadcastChannel !== "function" || !subject || this.channelFor === subject) return;
      if (this.channel) this.channel.close();
      this.channelFor = subject;
      this.channel = new BroadcastChannel(`herald:${this.api}:${subject}`);
      this.channel.onmessage = (event) => {
        const data = event.data || {};
        if (data.all) {
          this.markLocal([...this.items.keys()]);
          this.setCount(0);
        } else if (Array.isArray(data.read)) {
          this.markLocal(data.read);
          if (this.polling) this.loadCount();
        }
      };
    }

    broadcast(message) {
      if (this.channel) this.channel.postMessage(message);
    }

    destroy() {
      this.dead = true;
      this.stopPolling();
      if (this.closeSocket) this.closeSocket();
      this.ws = null;
      this.aborter.abort();
      for (const cancel of this.timers) cancel();
      this.timers.clear();
      clearInterval(this.tick);
      clearTimeout(this.announcing);
      if (this.observer) this.observer.disconnect();
      if (this.channel) this.channel.close();
      this.host.remove();
    }
  }

  function resolve(element) {
    const target = typeof element === "string" ? document.querySelector(element) : element;
    if (!(target instanceof Element)) throw new TypeError("Herald: pass an element (or a selector that finds one)");
    return target;
  }

  window.Herald = Object.freeze({
    version: VERSION,
    /** Mount the bell into ``element`` (replacing an earlier mount there); returns a handle. */
    mount(element, options) {
      const target = resolve(element);
      const previous = mounted.get(target);
      if (previous) previous.destroy();
      const widget = new Widget(target, options || {});
      mounted.set(target, widget);
      return Object.freeze({
        open: () => widget.open(),
        close: () => widget.close(false),
        refresh: () => {
          widget.loadCount();
          if (widget.loaded) widget.poll();
        },
        unmount: () => window.Herald.unmount(target),
      });
    },
    /** Remove the widget from ``element``: socket closed, timers and listeners gone. */
    unmount(element) {
      const target = resolve(element);
      const widget = mounted.get(target);
      if (!widget) return false;
      widget.destroy();
      mounted.delete(target);
      return true;
    },
  });
})();
