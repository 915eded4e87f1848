/*! Herald service worker v1 | served at /widget/v1/herald-sw.js | no dependencies */
/*
 * Shows Herald's web push notifications, and remembers which were clicked. Serve it from your
 * own origin (a copy, or a file holding just
 * importScripts("https://<tenant host>/widget/v1/herald-sw.js")) and register it; the widget
 * then offers "Enable browser notifications". Guide: api_docs/widget.md.
 *
 * The worker holds no token, so it cannot mark a notification read itself: a click records the
 * id in IndexedDB (database "herald", store "pending-reads", key = the id) and tells the open
 * pages; the widget marks the ids read through the API and deletes them. herald.js opens the
 * same store: keep the names in step. The widget also leaves the fallback title in its language
 * (database "herald-strings", store "herald-strings", key "pushTitle"); English otherwise.
 */
"use strict";

(() => {
  const STORE = "pending-reads";
  // English: the title of a push that brings none. Catalogues carry it in other languages.
  const EN = {
    pushTitle: "New notification",
  };

  /** The url if it is an absolute http(s) URL, else null: nothing else is ever opened. */
  const httpUrl = (value) => {
    try {
      const url = new URL(value);
      return /^https?:$/.test(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  };

  const text = (value) => (typeof value === "string" ? value.trim() : "");

  /** The payload as an object, whatever arrived: a push must always show something. */
  const payload = (data) => {
    try {
      const parsed = data && data.json();
      if (parsed && typeof parsed === "object") return parsed;
    } catch (_) {
      try {
        return { message: data.text() };
      } catch (_) {
        // unreadable data: the fallbacks below
      }
    }
    return {};
  };

  const remember = (id) =>
    new Promise((resolve, reject) => {
      const open = indexedDB.open("herald", 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction(STORE, "readwrite");
        tx.objectStore(STORE).put(Date.now(), id);
        tx.oncomplete = tx.onerror = tx.onabort = () => {
          db.close();
          if (tx.error) reject(tx.error);
          else resolve();
        };
      };
    });

  /** The fallback title the widget stored in the user's language; "" when there is none. */
  const storedTitle = () =>
    new Promise((resolve) => {
      const open = indexedDB.open("herald-strings", 1);
      open.onupgradeneeded = () => open.result.createObjectStore("herald-strings");
      open.onerror = () => resolve("");
      open.onsuccess = () => {
        const db = open.result;
        try {
          const request = db.transaction("herald-strings").objectStore("herald-strings").get("pushTitle");
          request.onsuccess = () => resolve(text(request.result));
          request.onerror = () => resolve("");
        } catch (_) {
          resolve("");
        }
        db.close(); // closes once the transaction is done
      };
    });

  const show = async (data) => {
    const id = Number.isInteger(data.id) && data.id > 0 ? data.id : null;
    const message = text(data.message);
    const title = text(data.title) || message || (await storedTitle().catch(() => "")) || EN.pushTitle;
    const options = { body: title === message ? "" : message, data: { url: httpUrl(data.url), id } };
    if (id) options.tag = `herald-${id}`;
    return self.registration.showNotification(title, options);
  };

  self.addEventListener("push", (event) => {
    event.waitUntil(show(payload(event.data)));
  });

  self.addEventListener("notificationclick", (event) => {
    const notification = event.notification;
    notification.close();
    const data = notification.data || {};
    const id = Number.isInteger(data.id) && data.id > 0 ? data.id : null;
    const url = httpUrl(data.url);
    const work = (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      if (id) {
        // Recorded before any page is told or opened: a page that mounts the widget reads it.
        await remember(id).catch(() => null);
        for (const client of windows) client.postMessage({ type: "herald:read", id });
      }
      const open = windows.find((client) => (url ? client.url === url : client.focused));
      if (open) return open.focus();
      if (url) return self.clients.openWindow(url);
      return windows[0] ? windows[0].focus() : self.clients.openWindow(self.registration.scope);
    })().catch(() => null);
    event.waitUntil(work);
  });
})();
