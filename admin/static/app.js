// kvgate status page: live refresh. Without JavaScript the page reloads
// itself every 10 seconds (a <noscript> refresh); with it, the <main>
// element is fetched again every 2 seconds and swapped in place, paused
// while the tab is hidden or the pointer is selecting text.
(function () {
  "use strict";
  var every = 2000, failures = 0;
  var dot = document.getElementById("live-dot");
  var text = document.getElementById("live-text");
  function say(cls, msg) {
    dot.className = "dot " + cls;
    text.textContent = msg;
  }
  function refresh() {
    if (document.hidden || String(window.getSelection()).length > 0) {
      return schedule();
    }
    fetch(location.pathname + "?partial=1", { headers: { "Accept": "text/html" }, cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var t = document.createElement("template");
        t.innerHTML = html;
        var next = t.content.getElementById("main");
        var cur = document.getElementById("main");
        if (next && cur) {
          cur.replaceWith(next);
        }
        failures = 0;
        say("on", "live · every " + every / 1000 + " s");
      })
      .catch(function (e) {
        failures++;
        say("stale", "not updating: " + e.message);
      })
      .then(schedule);
  }
  function schedule() {
    setTimeout(refresh, failures > 3 ? every * 5 : every);
  }
  say("on", "live · every " + every / 1000 + " s");
  schedule();
})();
