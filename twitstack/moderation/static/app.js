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
          // Ticked rows stay exactly as drawn: each tick is bound to the revision it showed,
          // and swapping rows under a selection would silently drop or move ticks.
          if (body.querySelector("input[name=pick]:checked")) {
            if (live) live.textContent = "live updates paused while rows are selected";
            return;
          }
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

  // The live counter, preview and warnings: the server counts (one rule, X's weighting), the
  // page asks it a moment after typing stops. Text goes in via textContent, never as HTML.
  // One server count per box: the New/Edit text and every thread part (threadComposer).
  function bindCounter(area, out) {
      var tokenField = document.querySelector("input[name=csrf_token]");
      if (!out || !window.fetch) return;
      var preview = document.getElementById(area.getAttribute("data-preview") || "");
      var warnings = document.getElementById(area.getAttribute("data-warnings") || "");
      var requestId = area.getAttribute("data-request-id");
      var timer = null, asked = 0;
      function show(data, text) {
        out.dataset.pending = "";
        out.dataset.weighted = data.weighted === null ? "" : String(data.weighted);
        out.dataset.text = text;
        out.classList.toggle("over", !!data.over);
        out.textContent = data.weighted === null ? "" : data.weighted + " / " + data.max + " weighted characters" + (data.over ? " (too long for X)" : "");
        if (warnings) {
          warnings.textContent = "";
          (data.warnings || []).forEach(function (w) {
            var li = document.createElement("li"), strong = document.createElement("strong");
            li.className = "warn-" + w.level;
            strong.textContent = w.code.replace(/_/g, " ");
            li.appendChild(strong);
            li.appendChild(document.createTextNode(" " + w.message));
            warnings.appendChild(li);
          });
          if (!warnings.children.length) {
            var none = document.createElement("li");
            none.className = "warn-info muted";
            none.textContent = "None.";
            warnings.appendChild(none);
          }
        }
      }
      function ask() {
        var text = area.value, mine = ++asked;
        var body = { text: text };
        if (requestId) body.request_id = requestId;
        fetch("/compose/check", {
          method: "POST", credentials: "same-origin",
          headers: { "content-type": "application/json", "x-csrf-token": tokenField ? tokenField.value : "" },
          body: JSON.stringify(body)
        }).then(function (r) { return r.json().then(function (data) { return [r.ok, data]; }); })
          .then(function (res) {
            if (mine !== asked) return;  // a newer question is on its way
            if (res[0]) show(res[1], text);
            else { out.dataset.pending = ""; out.textContent = res[1].detail || "cannot count this text"; }
          })
          .catch(function () { if (mine === asked) { out.dataset.pending = ""; out.textContent = "count unavailable (offline?); the server counts on save"; } });
      }
      function update() {
        if (preview) preview.textContent = area.value;
        out.dataset.pending = "1";
        clearTimeout(timer);
        timer = setTimeout(ask, 250);
      }
      area.addEventListener("input", update);
      update();
  }

  function counters() {
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-counter]"), function (area) {
      bindCounter(area, document.getElementById(area.getAttribute("data-counter")));
    });
  }

  // Bulk selection: "all on this page" (the live refresh pauses while anything is ticked).
  function bulkPicks() {
    var all = document.getElementById("pick-all");
    var table = document.getElementById("queue");
    if (!all || !table) return;
    all.addEventListener("change", function () {
      Array.prototype.forEach.call(table.querySelectorAll("input[name=pick]"), function (box) { box.checked = all.checked; });
    });
  }

  // Thread composer: add and remove part boxes (without this script, blank boxes are ignored).
  function threadComposer() {
    var box = document.getElementById("thread-parts");
    if (!box) return;
    var list = box.querySelector("ol.parts");
    var add = document.getElementById("add-part");
    var max = parseInt(box.getAttribute("data-max-parts"), 10) || 25;
    function refresh() {
      var items = list.querySelectorAll("li.part");
      add.disabled = items.length + 1 >= max;
      Array.prototype.forEach.call(items, function (item, index) {
        item.querySelector("textarea").setAttribute("aria-label", "Thread part " + (index + 2));
      });
    }
    function wire(item) {
      bindCounter(item.querySelector("textarea"), item.querySelector(".part-count"));
      item.querySelector(".remove-part").addEventListener("click", function () {
        if (list.querySelectorAll("li.part").length > 1) { item.remove(); }
        else { item.querySelector("textarea").value = ""; item.querySelector("textarea").dispatchEvent(new Event("input")); }
        refresh();
      });
    }
    Array.prototype.forEach.call(list.querySelectorAll("li.part"), function (item) {
      wire(item);
    });
    add.addEventListener("click", function () {
      var items = list.querySelectorAll("li.part");
      var item = items[items.length - 1].cloneNode(true);
      item.querySelector("textarea").value = "";
      list.appendChild(item);
      wire(item);
      refresh();
      item.querySelector("textarea").focus();
    });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () { liveQueue(); keyboardRows(); counters(); bulkPicks(); threadComposer(); });
})();
