/*! Herald widget settings v1 | served at /widget/v1/herald-settings.js | loaded by herald.js */
/*
 * The widget's settings view: the user's language and time zone, saved with
 * PUT /api/v1/me/preferences. herald.js loads this file the first time someone opens the view
 * (with its Subresource Integrity value) and hands it the widget; it is not a page's to include.
 * The same safety rules as herald.js: text only through textContent, no HTML, no eval.
 */
(() => {
  "use strict";

  // English: this view's strings and the fallback for each. Catalogues carry them too.
  const EN = {
    language: "Language",
    automatic: "Automatic (browser)",
    timezone: "Time zone",
    save: "Save",
    back: "Back",
    saved: "Saved.",
    refused: "{f} was not accepted. Choose another value.",
    saveFailed: "Settings could not be saved.",
  };
  // The languages Herald ships catalogues for (a test keeps this list in step with them).
  const LANGUAGES = ["ar", "de", "en", "es", "fr"];

  const CSS = `
.settings{display:flex;flex-direction:column;gap:12px;padding:16px;overflow-y:auto}
.settings .field{display:flex;flex-direction:column;gap:4px}
.settings label{font-weight:550}
.settings select{font:inherit;font-weight:400;color:var(--_fg);background:var(--_bg);
  border:1px solid var(--_line);border-radius:6px;padding:6px 8px;max-width:100%}
.settings select[aria-invalid=true]{border-color:var(--_badge)}
.settings .row{display:flex;gap:8px;align-items:center}
.settings .save{padding:6px 14px;border-radius:6px;background:var(--_accent);color:var(--_on-accent);font-weight:600}
.settings .save:disabled{opacity:.6;cursor:default}
.settings .back{padding:6px 8px;border-radius:6px;color:var(--_link)}
.settings .back:hover{background:var(--_hover)}
.settings .status{margin:0;color:var(--_muted);font-size:13px}
.settings .status.error{color:var(--_badge)}
`;
  let sheet = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function option(value, label, selected) {
    const node = el("option", null, label);
    node.value = value;
    node.selected = selected;
    return node;
  }

  /** A language's own name ("Deutsch", "français"), or the tag when the browser has none. */
  function languageName(tag) {
    try {
      const name = new Intl.DisplayNames([tag], { type: "language" }).of(tag);
      return name ? name[0].toLocaleUpperCase(tag) + name.slice(1) : tag;
    } catch (_) {
      return tag;
    }
  }

  /** Every IANA zone the browser knows (else just its own and UTC), with ``extra`` added. */
  function timeZones(extra) {
    let zones = [];
    try {
      zones = Intl.supportedValuesOf("timeZone");
    } catch (_) {
      // an older browser: the suggestion and UTC only
    }
    return [...new Set([...zones, ...extra, "UTC"].filter(Boolean))].sort();
  }

  const browserZone = () => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (_) {
      return "";
    }
  };

  const views = new WeakMap(); // widget -> its open settings view

  /** Show (or, when it is open, hide) the settings view in ``widget``'s panel. */
  async function toggle(widget) {
    const open = views.get(widget);
    if (open) return open.close();
    const shadow = widget.shadow;
    if (!shadow.adoptedStyleSheets) {
      // Older browsers, as in herald.js: a <style> (a strict CSP blocks this one path).
      if (!shadow.querySelector("style.settings-css")) shadow.appendChild(el("style", "settings-css", CSS));
    } else if (!shadow.adoptedStyleSheets.includes(sheet)) {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      shadow.adoptedStyleSheets = [...shadow.adoptedStyleSheets, sheet];
    }
    const view = new View(widget);
    views.set(widget, view);
    await view.load();
  }

  class View {
    constructor(widget) {
      this.w = widget;
      this.form = el("form", "settings");
      this.form.noValidate = true;
      this.pushHidden = widget.pushRow.hidden;
      widget.body.hidden = widget.pushRow.hidden = true;
      widget.panel.insertBefore(this.form, widget.foot);
      widget.gear.setAttribute("aria-expanded", "true");
      this.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.save();
      });
    }

    t(key, values) {
      const text = this.w.locale.strings[key] || EN[key];
      return values ? text.replace(/\{(\w)\}/g, (match, k) => (k in values ? values[k] : match)) : text;
    }

    async load() {
      this.status = { text: this.t("loading") };
      this.render();
      try {
        const preferences = await this.w.call("GET", "/me/preferences");
        this.locale = preferences.locale || "";
        this.timezone = preferences.timezone || browserZone();
        this.status = null;
      } catch (error) {
        if (this.w.failed(error)) return;
        this.status = { text: this.t("failed"), error: true };
      }
      this.render();
      if (this.language) this.language.focus();
    }

    render() {
      const form = this.form;
      form.textContent = "";
      if (this.locale !== undefined) {
        const language = (this.language = el("select"));
        language.name = "locale";
        language.append(option("", this.t("automatic"), !this.locale));
        const tags = LANGUAGES.includes(this.locale) || !this.locale ? LANGUAGES : [...LANGUAGES, this.locale];
        for (const tag of tags) language.append(option(tag, languageName(tag), tag === this.locale));
        const zone = (this.zone = el("select"));
        zone.name = "timezone";
        for (const name of timeZones([this.timezone, browserZone()])) {
          zone.append(option(name, name.replace(/_/g, " "), name === this.timezone));
        }
        form.append(this.field(language, "language"), this.field(zone, "timezone"));
        this.invalid(null);
      }
      const row = el("div", "row");
      if (this.locale !== undefined) {
        this.saveButton = el("button", "save", this.t("save"));
        this.saveButton.type = "submit";
        row.append(this.saveButton);
      }
      const back = el("button", "back", this.t("back"));
      back.type = "button";
      back.addEventListener("click", () => this.close(true));
      row.append(back);
      this.statusLine = el("p", "status", this.status ? this.status.text : "");
      this.statusLine.setAttribute("role", this.status && this.status.error ? "alert" : "status");
      this.statusLine.classList.toggle("error", !!(this.status && this.status.error));
      form.append(row, this.statusLine);
    }

    field(select, key) {
      const label = el("label", null, this.t(key));
      select.id = label.htmlFor = `herald-settings-${this.w.id}-${key}`;
      const field = el("div", "field");
      field.append(label, select);
      return field;
    }

    invalid(field) {
      for (const select of [this.language, this.zone]) {
        if (select.name === field) select.setAttribute("aria-invalid", "true");
        else select.removeAttribute("aria-invalid");
      }
    }

    async save() {
      const locale = this.language.value;
      const timezone = this.zone.value;
      this.saveButton.disabled = true;
      try {
        const saved = await this.w.call("PUT", "/me/preferences", { body: { locale, timezone } });
        if (this.w.dead) return;
        this.locale = saved.locale || "";
        this.timezone = saved.timezone || timezone;
        // The widget's strings, direction and date formats follow the new language at once.
        await this.w.useLocale(this.locale);
        this.status = { text: this.t("saved") };
        this.render();
        this.w.emit("settings", { locale: this.locale, timezone: this.timezone });
      } catch (error) {
        if (this.w.dead || (error && error.name === "AbortError")) return;
        const details = (error && error.details) || {};
        const field = ["locale", "timezone"].find((name) => name in details);
        if (error && error.status === 400 && field) {
          const label = this.t(field === "locale" ? "language" : "timezone");
          this.status = { text: this.t("refused", { f: label }), error: true };
          this.statusLine.textContent = this.status.text;
          this.statusLine.setAttribute("role", "alert");
          this.statusLine.classList.add("error");
          this.invalid(field);
        } else {
          if (error && (error.status === 401 || error.status === 403)) this.w.failed(error);
          this.status = { text: this.t("saveFailed"), error: true };
          this.render();
        }
      } finally {
        if (this.saveButton) this.saveButton.disabled = false;
      }
    }

    close(returnFocus) {
      const w = this.w;
      views.delete(w);
      this.form.remove();
      w.body.hidden = false;
      w.pushRow.hidden = this.pushHidden;
      w.gear.setAttribute("aria-expanded", "false");
      if (returnFocus) w.gear.focus();
    }
  }

  // Not a "herald:" event: those are the public ones, dispatched on the mount element.
  dispatchEvent(new CustomEvent("herald-settings-ready", { detail: toggle }));
})();
