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
});
