// The viewer's only script. Pages work without it; it adds: filters and version pickers that
// apply on change, copying the devfile, hiding icons that cannot load, and live updates from
// /api/events (the gallery swaps in its new cards and facets, a detail page offers new versions).
(function () {
  "use strict";
  var body = document.body;
  document.documentElement.classList.add("js");

  function wire(root) {
    root.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.form.requestSubmit) input.form.requestSubmit(); else input.form.submit();
      });
    });
  }
  wire(document);

  // A broken icon becomes the entry's initial rather than alt text in a small box.
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (!(img instanceof HTMLImageElement) || !img.classList.contains("icon")) return;
    var fallback = document.createElement("span");
    fallback.className = img.className + " icon-fallback";
    fallback.setAttribute("aria-hidden", "true");
    var letter = (img.alt || "").match(/[A-Za-z0-9]/);
    fallback.textContent = letter ? letter[0].toUpperCase() : "?";
    img.replaceWith(fallback);
  }, true);

  // Filters take room on phones: start closed there.
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia("(max-width: 800px)").matches) filters.open = false;

  var copy = document.getElementById("copy-yaml");
  var yaml = document.getElementById("devfile-yaml");
  if (copy && yaml) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var text = yaml.textContent;
      var done = function () { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy"; }, 2000); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, fallbackCopy);
      } else {
        fallbackCopy();
      }
      function fallbackCopy() {
        var area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.style.position = "fixed";
        area.style.opacity = "0";
        document.body.appendChild(area);
        area.select();
        try { document.execCommand("copy"); done(); } catch (e) { copy.textContent = "Select the text to copy"; }
        area.remove();
      }
    });
  }

  function say(text) {
    var status = document.getElementById("live-status");
    if (status) status.textContent = text;
  }

  function fetchFragment(url) {
    return fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" }).then(function (response) {
      return response.text().then(function (text) {
        var template = document.createElement("template");
        template.innerHTML = text;
        return { ok: response.ok, status: response.status, html: template.content, digest: response.headers.get("X-Index-Digest") };
      });
    });
  }

  function refreshGallery() {
    var before = {};
    document.querySelectorAll("#results .card").forEach(function (card) { before[card.dataset.name] = true; });
    return fetchFragment(body.dataset.live + window.location.search).then(function (fragment) {
      if (!fragment.ok) return;
      ["facets", "results"].forEach(function (id) {
        var fresh = fragment.html.getElementById(id);
        var old = document.getElementById(id);
        if (fresh && old) { old.replaceWith(fresh); wire(fresh); }
      });
      var added = 0, now = {};
      document.querySelectorAll("#results .card").forEach(function (card) {
        now[card.dataset.name] = true;
        if (!before[card.dataset.name]) { card.classList.add("is-new"); added++; }
      });
      var removed = Object.keys(before).filter(function (name) { return !now[name]; }).length;
      if (fragment.digest) body.dataset.digest = fragment.digest;
      var parts = [];
      if (added) parts.push(added + " new");
      if (removed) parts.push(removed + " removed");
      say("The registry was updated" + (parts.length ? ": " + parts.join(", ") : "") + ".");
    });
  }

  function refreshDetail() {
    var picker = document.getElementById("version-picker");
    var notice = document.getElementById("live-notice");
    if (!picker || !notice) return Promise.resolve();
    var known = (picker.dataset.versions || "").split(",").filter(Boolean);
    return fetchFragment(body.dataset.live + window.location.search).then(function (fragment) {
      if (fragment.digest) body.dataset.digest = fragment.digest;
      notice.replaceChildren();
      if (fragment.status === 404) {
        notice.append("This stack is no longer in the registry. ");
        var home = document.createElement("a");
        home.href = "/viewer";
        home.textContent = "Browse the registry";
        notice.append(home);
        notice.hidden = false;
        return;
      }
      var fresh = fragment.html.getElementById("version-picker");
      if (!fresh) return;
      var versions = (fresh.dataset.versions || "").split(",").filter(Boolean);
      var added = versions.filter(function (v) { return known.indexOf(v) < 0; });
      picker.replaceWith(fresh);
      wire(fresh);
      if (added.length) {
        notice.append("New version" + (added.length > 1 ? "s" : "") + " available: ");
        added.forEach(function (version, i) {
          var link = fresh.querySelector('.version-list a[href$="devfile-version=' + encodeURIComponent(version) + '"]');
          var a = document.createElement("a");
          a.href = link ? link.getAttribute("href") : "?devfile-version=" + encodeURIComponent(version);
          a.textContent = version;
          if (i) notice.append(", ");
          notice.append(a);
        });
        notice.hidden = false;
      }
    });
  }

  if (!window.EventSource || !body.dataset.live) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var run = body.dataset.page === "gallery" ? refreshGallery : refreshDetail;
    run().catch(function () {}).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var events = new EventSource("/api/events");
  events.addEventListener("index", function (event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    body.dataset.subscribed = "true";
    if (data.digest && data.digest !== body.dataset.digest) {
      body.dataset.digest = data.digest;
      refresh();
    }
  });
})();
