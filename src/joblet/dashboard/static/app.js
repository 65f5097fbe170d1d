// joblet dashboard: live fragments over the Kubernetes watch API, logs, and Job actions.
// No dependencies, no build step. The server renders every fragment; this script only
// re-fetches them when a watch reports a change.
"use strict";

(function () {
  const tokenMeta = document.querySelector('meta[name="joblet-token"]');
  const token = tokenMeta ? tokenMeta.content : null;

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }

  function api(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    return fetch(url, opts);
  }

  // ---- live fragments -------------------------------------------------------------------
  const live = document.getElementById("live");
  const dot = document.getElementById("live-dot");
  let refreshTimer = null;
  let refreshing = false;

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(refresh, 250);
  }

  async function refresh() {
    refreshTimer = null;
    if (!live || refreshing) { if (live) scheduleRefresh(); return; }
    refreshing = true;
    try {
      const r = await api(live.dataset.partial);
      if (r.ok) {
        live.innerHTML = await r.text();
        bindTimeline();
      }
    } catch (e) { /* next event retries */ }
    refreshing = false;
  }

  async function watch(url) {
    const sep = url.includes("?") ? "&" : "?";
    for (;;) {
      try {
        const r = await api(url + sep + "watch=1&allowWatchBookmarks=false");
        if (!r.ok || !r.body) throw new Error("watch " + r.status);
        if (dot) dot.classList.add("on");
        const reader = r.body.getReader();
        let first = true;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (value && value.length) {
            // The first chunk replays the current state: the page already shows it.
            if (!first) scheduleRefresh();
            first = false;
          }
        }
      } catch (e) { /* reconnect below */ }
      if (dot) dot.classList.remove("on");
      await new Promise((res) => setTimeout(res, 1000));
      scheduleRefresh();
    }
  }

  if (live && live.dataset.watch) {
    live.dataset.watch.split("|").forEach((u) => watch(u));
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
    try {
      if (d.outcome === "running") {
        const q = "follow=true" + (d.container ? "&container=" + encodeURIComponent(d.container) : "");
        const url = "/api/v1/namespaces/" + encodeURIComponent(d.ns) + "/pods/" + encodeURIComponent(d.pod) + "/log?" + q;
        const r = await api(url, { signal });
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
        const url = "/ui/logs/" + encodeURIComponent(d.ns) + "/" + encodeURIComponent(d.pod) + "?" + q;
        const r = await api(url, { signal });
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

  // ---- actions ------------------------------------------------------------------------------
  const actions = document.querySelector(".actions");
  if (actions) {
    const ns = actions.dataset.ns, name = actions.dataset.name;
    const jobUrl = "/apis/batch/v1/namespaces/" + encodeURIComponent(ns) + "/jobs/" + encodeURIComponent(name);
    actions.querySelectorAll("button[data-suspend]").forEach((b) => {
      b.addEventListener("click", async () => {
        const suspend = b.dataset.suspend === "true";
        const r = await api(jobUrl, {
          method: "PATCH",
          headers: { "Content-Type": "application/merge-patch+json" },
          body: JSON.stringify({ spec: { suspend: suspend } }),
        });
        if (r.ok) {
          document.getElementById("suspend").disabled = suspend;
          document.getElementById("resume").disabled = !suspend;
          scheduleRefresh();
        } else alert("Failed: " + (await r.text()));
      });
    });
    const del = document.getElementById("delete");
    if (del) del.addEventListener("click", async () => {
      if (!confirm("Delete Job " + ns + "/" + name + " and its pods? Its logs are kept.")) return;
      const r = await api(jobUrl, {
        method: "DELETE",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" }),
      });
      if (r.ok) window.location.href = "/ui";
      else alert("Failed: " + (await r.text()));
    });
  }
})();
