// joblet dashboard: live fragments, logs and actions. No dependencies, no build step.
// The server renders every fragment; this script re-fetches them when /ui/watch/... reports a
// change, streams logs and posts actions. It calls only /ui routes (never the Kubernetes API,
// which does not accept cookies) and sends the session's CSRF token on every action.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="joblet-csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  function get(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
  }

  // The CSP forbids inline styles: bar positions and widths travel as data attributes.
  function applyGeometry(root) {
    root.querySelectorAll("[data-width]").forEach((el) => {
      el.style.width = el.dataset.width + "%";
      if (el.dataset.left !== undefined) el.style.left = el.dataset.left + "%";
    });
  }
  applyGeometry(document);

  // ---- live fragments -------------------------------------------------------------------
  const live = document.getElementById("live");
  const dot = document.getElementById("live-dot");
  let refreshTimer = null;
  let refreshing = false;

  // A fragment is either one piece for #live or parts (#part-main, #part-events...) that
  // replace the elements of the same id, so the log pane between them keeps streaming.
  function place(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html;
    const parts = [...tpl.content.children].filter((el) => el.id && document.getElementById(el.id));
    if (parts.length) parts.forEach((el) => document.getElementById(el.id).replaceWith(el));
    else live.replaceChildren(tpl.content);
    applyGeometry(document);
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(refresh, 250);
  }

  async function refresh() {
    refreshTimer = null;
    if (!live || refreshing) { if (live) scheduleRefresh(); return; }
    refreshing = true;
    try {
      const r = await get(live.dataset.partial);
      if (r.ok) {
        place(await r.text());
        bindTimeline();
      } else if (r.status === 401) {
        window.location.reload();  // the session ended: show the login form
      }
    } catch (e) { /* next event retries */ }
    refreshing = false;
  }

  async function watch(url) {
    for (;;) {
      try {
        const r = await get(url);
        if (!r.ok || !r.body) throw new Error("watch " + r.status);
        if (dot) dot.classList.add("on");
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          // "ready" first (the page already shows that state), then one "change" per burst.
          if (value && dec.decode(value, { stream: true }).includes("change")) scheduleRefresh();
        }
      } catch (e) { /* reconnect below */ }
      if (dot) dot.classList.remove("on");
      await new Promise((res) => setTimeout(res, 1000));
      scheduleRefresh();
    }
  }

  if (live && live.dataset.watch) {
    watch(live.dataset.watch);
    // Durations and running bars move with time even without events.
    setInterval(scheduleRefresh, 5000);
  }

  // ---- logs -------------------------------------------------------------------------------
  const logBox = document.getElementById("log");
  const logTitle = document.getElementById("log-title");
  let logAbort = null;

  async function showLog(d) {
    if (!logBox || !d.pod) return;
    if (logAbort) logAbort.abort();
    logAbort = new AbortController();
    const signal = logAbort.signal;
    const attempt = Number(d.attempt || 0);
    if (logTitle) logTitle.textContent = d.pod + (d.container ? "/" + d.container : "") + " attempt " + (attempt + 1);
    logBox.textContent = "";
    logBox.dataset.pod = d.pod;
    document.querySelectorAll(".bar.selected").forEach((b) => b.classList.remove("selected"));
    document.querySelectorAll('.bar[data-pod="' + CSS.escape(d.pod) + '"][data-attempt="' + attempt + '"]')
      .forEach((b) => b.classList.add("selected"));
    const base = "/ui/logs/" + encodeURIComponent(d.ns) + "/" + encodeURIComponent(d.pod) + "?";
    try {
      if (d.outcome === "running") {
        const q = new URLSearchParams({ follow: "true", container: d.container || "" });
        const r = await get(base + q, { signal });
        if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          logBox.textContent += dec.decode(value, { stream: true });
          logBox.scrollTop = logBox.scrollHeight;
        }
      } else {
        const q = new URLSearchParams({ uid: d.uid || "", container: d.container || "", attempt: String(attempt) });
        const r = await get(base + q, { signal });
        logBox.textContent = r.ok ? (await r.text()) || "(no output)" : "(no logs: " + r.status + ")";
      }
    } catch (e) {
      if (e.name !== "AbortError") logBox.textContent += "\n(log stream ended: " + e.message + ")";
    }
  }

  function bindTimeline() {
    document.querySelectorAll(".timeline .bar[data-pod]").forEach((bar) => {
      bar.addEventListener("click", () => showLog(bar.dataset));
    });
  }
  bindTimeline();
  if (logBox && logBox.dataset.pod) showLog(logBox.dataset);

  // ---- actions: POST /ui/actions/{kind}/{ns}/{name}/{action} with X-CSRF-Token ----------------
  // Delegated: the buttons arrive with the live fragments and are replaced with them.
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest(".actions button[data-action]");
    if (!b || b.disabled) return;
    const box = b.closest(".actions");
    const { kind, ns, name } = box.dataset;
    const action = b.dataset.action;
    if (action === "delete" && !confirm("Delete " + ns + "/" + name + " and its pods? Its logs are kept.")) return;
    const errorBox = box.querySelector(".action-error");
    if (errorBox) errorBox.textContent = "";
    b.disabled = true;
    const url = "/ui/actions/" + kind + "/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name) + "/" + action;
    let r = null;
    try {
      r = await get(url, { method: "POST", headers: { "X-CSRF-Token": csrf } });
    } catch (e) { /* reported below */ }
    if (r && r.ok) {
      const result = await r.json();
      if (result.location) { window.location.href = result.location; return; }
      if (action === "suspend" || action === "resume") {
        const other = box.querySelector('button[data-action="' + (action === "suspend" ? "resume" : "suspend") + '"]');
        if (other) other.disabled = false;
      } else b.disabled = false;
      scheduleRefresh();
    } else {
      b.disabled = false;
      const text = r ? r.status + " " + (await r.text()) : "network error";
      if (errorBox) errorBox.textContent = text;
    }
  });
})();
