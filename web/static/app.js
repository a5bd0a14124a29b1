// Approvals reviewer UI: small enhancements only. Every page works without
// this file; it adds select-all for bulk decisions, a selection count, bulk
// buttons that wait for a selection, confirmations before denying,
// auto-applying the sort order and local times on hover.
(function () {
  "use strict";

  function boxes(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="id"]'));
  }

  function updateSelection(form) {
    var all = boxes(form);
    var checked = all.filter(function (b) { return b.checked; }).length;
    var count = form.querySelector("[data-selected-count]");
    if (count) {
      count.textContent = checked ? String(checked) : "";
    }
    // Nothing to decide until something is selected.
    form.querySelectorAll('button[name="action"]').forEach(function (b) { b.disabled = checked === 0; });
    var master = form.querySelector("[data-select-all]");
    if (master) {
      master.checked = checked > 0 && checked === all.length;
      master.indeterminate = checked > 0 && checked < all.length;
    }
  }

  document.querySelectorAll("[data-select-all]").forEach(function (master) {
    var form = master.form;
    if (!form) { return; }
    master.hidden = false;
    master.addEventListener("change", function () {
      boxes(form).forEach(function (b) { b.checked = master.checked; });
      updateSelection(form);
    });
    form.addEventListener("change", function (e) {
      if (e.target && e.target.name === "id") { updateSelection(form); }
    });
    updateSelection(form);
  });

  document.addEventListener("submit", function (e) {
    var button = e.submitter;
    var message = (button && button.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (!message) { return; }
    var n = boxes(e.target).filter(function (b) { return b.checked; }).length;
    if (n > 0) { message = message.replace("the selected requests", n === 1 ? "1 request" : n + " requests"); }
    if (!window.confirm(message)) { e.preventDefault(); }
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form && select.form.requestSubmit) { select.form.requestSubmit(); }
    });
  });

  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) { t.title = d.toLocaleString() + " (your time)"; }
  });
})();
