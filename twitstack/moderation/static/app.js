// twitstack moderation: optional niceties. Every page works without this file.
(function () {
  "use strict";

  // Live queue: re-fetch the rows with the same filters and swap them in when they change.
  function liveQueue() {
    var table = document.getElementById("queue");
    if (!table || !window.fetch) return;
    var body = table.tBodies[0];
    var url = table.getAttribute("data-rows-url");
    var every = parseInt(table.getAttribute("data-refresh-ms"), 10) || 5000;
    var live = document.getElementById("live");
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return Promise.all([r.text(), r.headers.get("x-total-count")]); })
        .then(function (res) {
          var html = res[0], total = res[1];
          if (html.trim() !== body.innerHTML.trim()) {
            var known = {};
            Array.prototype.forEach.call(body.rows, function (row) { known[row.getAttribute("data-id")] = true; });
            var selected = body.querySelector("tr.selected");
            var selectedId = selected && selected.getAttribute("data-id");
            body.innerHTML = html;
            Array.prototype.forEach.call(body.rows, function (row) {
              var id = row.getAttribute("data-id");
              if (id && !known[id]) row.classList.add("fresh");
              if (id && id === selectedId) row.classList.add("selected");
            });
          }
          var shown = document.getElementById("pending-total");
          if (shown && total !== null) shown.textContent = total;
          var badge = document.querySelector(".top nav .count");
          if (badge && total !== null && !table.getAttribute("data-rows-url").match(/[?&](action|account|author|age)=[^&]/)) badge.textContent = total;
          if (live) live.textContent = "live · updated " + new Date().toLocaleTimeString();
        })
        .catch(function () { if (live) live.textContent = "live updates paused (offline?)"; })
        .then(function () { busy = false; });
    }
    setInterval(tick, every);
    document.addEventListener("visibilitychange", tick);
  }

  // j/k moves through table rows that link somewhere; Enter opens the selected one.
  function keyboardRows() {
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (target && /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(target.tagName)) return;
      var rows = Array.prototype.slice.call(document.querySelectorAll("table.grid tbody tr[data-id]"));
      if (!rows.length) return;
      var index = rows.findIndex(function (row) { return row.classList.contains("selected"); });
      if (event.key === "j" || event.key === "k") {
        if (index >= 0) rows[index].classList.remove("selected");
        index = event.key === "j" ? Math.min(rows.length - 1, index + 1) : Math.max(0, index - 1);
        rows[index].classList.add("selected");
        rows[index].scrollIntoView({ block: "nearest" });
        event.preventDefault();
      } else if (event.key === "Enter" && index >= 0) {
        var link = rows[index].querySelector("a");
        if (link) window.location.href = link.href;
      }
    });
  }

  // A rough live character count; the server's weighted count is the one that decides.
  function counters() {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-counter]"), function (area) {
      var out = document.getElementById(area.getAttribute("data-counter"));
      if (!out) return;
      function update() { out.textContent = Array.from(area.value).length + " characters (X weighs URLs and some scripts differently)"; }
      area.addEventListener("input", update);
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { liveQueue(); keyboardRows(); counters(); });
})();
