// Keeps the page current: every two seconds the same page is fetched with X-Refresh: 1, which
// returns only its <main>, and swapped in. Paused while the tab is hidden or a field in the
// page has the focus (someone is typing a search); a lost session sends the browser to log in.
"use strict";
(function () {
  const main = document.getElementById("main");
  if (!main) return;
  async function refresh() {
    if (document.hidden || (document.activeElement && main.contains(document.activeElement) && document.activeElement.tagName === "INPUT")) return;
    try {
      const r = await fetch(location.pathname + location.search, { headers: { "X-Refresh": "1" }, credentials: "same-origin", redirect: "manual" });
      if (r.type === "opaqueredirect" || r.status === 401) { location.assign("/login"); return; }
      if (r.ok) main.innerHTML = await r.text();
    } catch (e) { /* the appliance restarting: try again on the next tick */ }
  }
  setInterval(refresh, 2000);
})();
