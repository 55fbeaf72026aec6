// Console behaviour kept out of the pages (the CSP allows no inline script).
document.addEventListener("DOMContentLoaded", function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  // HTMX requests carry the session's CSRF token as a header.
  document.body.addEventListener("htmx:configRequest", function (evt) {
    if (meta && meta.content) { evt.detail.headers["X-CSRF-Token"] = meta.content; }
  });
  // Forms that destroy something ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (evt) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { evt.preventDefault(); }
    });
  });
  // Selects marked autosubmit submit their form on change.
  document.querySelectorAll("select.autosubmit").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
  // The dashboard's live card: new events arrive over Server-Sent Events (text only).
  var feed = document.querySelector("[data-live-feed]");
  if (feed && window.EventSource) { liveFeed(feed); }
  // The alert centre: new alerts arrive over their own stream; loud ones beep.
  var alerts = document.querySelector("[data-alert-feed]");
  if (alerts && window.EventSource) { alertFeed(alerts); }
});

// A short beep through Web Audio (no sound file, nothing inline); browsers may keep it
// silent until the page has been clicked once.
function beep() {
  try {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { return; }
    var ctx = beep.ctx || (beep.ctx = new Ctx());
    var osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain); gain.connect(ctx.destination);
    osc.start(); osc.stop(ctx.currentTime + 0.4);
  } catch (e) { /* no audio: the row still flashes */ }
}

// Prepend each alert (raised or escalated) as a card linking to its page; text only.
function alertFeed(list) {
  function attr(name) {
    try { return JSON.parse(list.getAttribute(name) || "{}"); } catch (e) { return {}; }
  }
  var models = attr("data-models"), severities = attr("data-severities");
  var status = document.getElementById("live-status");
  function say(a) { if (status) { status.textContent = status.getAttribute(a) || ""; } }
  function part(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    el.textContent = text;
    return el;
  }
  var source = new EventSource("/api/v1/alerts/live");
  source.addEventListener("open", function () { say("data-connected"); });
  source.addEventListener("error", function () { say("data-disconnected"); });
  source.addEventListener("alert", function (msg) {
    var item;
    try { item = JSON.parse(msg.data); } catch (e) { return; }
    if (item.action !== "raised" && item.action !== "escalated") { return; }
    var placeholder = list.querySelector("[data-placeholder]");
    if (placeholder) { placeholder.remove(); }
    var old = list.querySelector('[data-alert-id="' + Number(item.id) + '"]');
    if (old) {
      old.remove();
    } else {
      var total = document.getElementById("alert-total");
      if (total) { total.textContent = String((parseInt(total.textContent, 10) || 0) + 1); }
    }
    var li = document.createElement("li");
    li.className = "fresh sev-" + String(item.severity || "");
    li.setAttribute("data-alert-id", String(Number(item.id)));
    var a = document.createElement("a");
    a.href = "/alerts/" + Number(item.id);
    a.appendChild(part("span", "badge sev", severities[item.severity] || String(item.severity || "")));
    a.appendChild(part("strong", "", models[item.model] || String(item.model || "")));
    a.appendChild(part("span", "title", String(item.title || "")));
    a.appendChild(part("span", "muted small", String(item.community_name || "") + (item.place ? " · " + item.place : "")));
    a.appendChild(part("span", "meta small", list.getAttribute("data-new") || ""));
    li.appendChild(a);
    list.insertBefore(li, list.firstChild);
    if (item.sound) { beep(); }
  });
}

// Prepend each streamed event to the list, newest first, keeping at most 30 rows.
// Everything is set with textContent: nothing from the stream is parsed as HTML.
function liveFeed(feed) {
  var kinds = {};
  try { kinds = JSON.parse(feed.getAttribute("data-kinds") || "{}"); } catch (e) { kinds = {}; }
  var status = document.getElementById("live-status");
  function say(attr) { if (status) { status.textContent = feed.getAttribute(attr) || ""; } }
  // Times in the node's time zone, like the server-rendered rows ("2026-11-21 15:19:07").
  var format;
  try {
    format = new Intl.DateTimeFormat("sv-SE", {
      timeZone: feed.getAttribute("data-tz") || undefined, hour12: false,
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
  } catch (e) { format = new Intl.DateTimeFormat("sv-SE"); }
  function when(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso || "") : format.format(d);
  }
  function part(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    el.textContent = text;
    return el;
  }
  var source = new EventSource("/api/v1/events/live");
  source.addEventListener("open", function () { say("data-connected"); });
  source.addEventListener("error", function () { say("data-disconnected"); });
  source.addEventListener("event", function (msg) {
    var item;
    try { item = JSON.parse(msg.data); } catch (e) { return; }
    var placeholder = feed.querySelector("[data-placeholder]");
    if (placeholder) { placeholder.remove(); }
    var li = document.createElement("li");
    li.className = "fresh";
    li.appendChild(part("time", "", when(item.at)));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(part("strong", "", kinds[item.kind] || String(item.kind || "")));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(part("span", "device", String(item.device_name || item.device || "")));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(part("span", "subject mono", item.subject ? String(item.subject.value || "") : ""));
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > 30) { feed.removeChild(feed.lastChild); }
  });
}
