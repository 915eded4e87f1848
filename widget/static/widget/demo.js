// The widget demo page (development mode): mounts the widget and sends demo notifications.
// A separate file, as the page's Content-Security-Policy allows no inline script.
(() => {
  "use strict";

  const csrf = () => document.querySelector("input[name=csrfmiddlewaretoken]").value;

  async function post(url, data) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), Accept: "application/json" },
      body: data,
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `The demo backend answered ${response.status}.`);
    return body;
  }

  function mount() {
    const slot = document.getElementById("notifications");
    const locale = document.getElementById("locale").value;
    const mode = document.getElementById("mode").value;
    Herald.mount(slot, {
      apiUrl: slot.dataset.apiUrl,
      // Your app's backend would call POST /api/v1/users/{id}/token with its API key.
      getToken: () => post(slot.dataset.tokenUrl).then((body) => body.token),
      locale: locale || undefined,
      theme: { mode },
    });
  }

  function log(text) {
    const list = document.getElementById("event-log");
    const item = document.createElement("li");
    item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
    list.prepend(item);
    while (list.children.length > 8) list.lastElementChild.remove();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const status = document.getElementById("send-status");
    if (!window.Herald) {
      status.textContent = "The widget script did not load.";
      return;
    }
    const slot = document.getElementById("notifications");
    for (const type of ["unread", "notification", "connection", "select", "error"]) {
      slot.addEventListener(`herald:${type}`, (event) => {
        const detail = event.detail || {};
        const text =
          type === "notification" ? `#${detail.notification.id} ${detail.notification.title || detail.notification.message}`
          : type === "select" ? `#${detail.notification.id} selected`
          : type === "unread" ? `unread count ${detail.count}`
          : type === "connection" ? `connection ${detail.state}`
          : `${detail.code}: ${detail.message}`;
        log(`herald:${type}  ${text}`);
      });
    }
    slot.addEventListener("herald:select", (event) => {
      // A demo has nowhere to go: stay on the page instead of following example.com links.
      event.preventDefault();
    });
    mount();
    document.getElementById("locale").addEventListener("change", mount);
    document.getElementById("mode").addEventListener("change", mount);

    document.getElementById("send-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const button = event.submitter;
      const data = new FormData(form);
      data.set("count", button ? button.value : "1");
      for (const each of form.querySelectorAll("button")) each.disabled = true;
      status.textContent = "Sending…";
      try {
        const body = await post(form.action, data);
        status.textContent = body.sent === 1 ? "Sent. Watch the bell." : `Sent ${body.sent}. Watch the bell.`;
      } catch (error) {
        status.textContent = error.message;
      } finally {
        for (const each of form.querySelectorAll("button")) each.disabled = false;
      }
    });
  });
})();
