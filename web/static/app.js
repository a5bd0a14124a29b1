// Approvals reviewer UI: small enhancements only. Every page works without
// this file; it adds select-all for bulk decisions, a selection count, bulk
// buttons that wait for a selection, an in-page confirmation dialog before
// denying, Enter in the order dropdown, and times in the browser's time
// zone (the UTC time the server wrote stays as the hover title).
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

  // Confirmations: a submit button (or form) with data-confirm asks in the
  // page's <dialog>, which keeps focus inside until it is answered; Escape
  // and Cancel give the focus back to the button.
  var dialog = document.getElementById("confirm-dialog");
  var pending = null;
  function ask(form, button, source) {
    var n = boxes(form).filter(function (b) { return b.checked; }).length;
    var message = source.getAttribute("data-confirm");
    if (n > 0) { message = message.replace("the selected requests", n === 1 ? "1 request" : n + " requests"); }
    dialog.querySelector(".confirm-title").textContent = message;
    dialog.querySelector(".confirm-text").textContent = source.getAttribute("data-confirm-detail") || "";
    dialog.querySelector('button[value="confirm"]').textContent = source.getAttribute("data-confirm-label") || "Confirm";
    pending = { form: form, button: button };
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector('button[value="cancel"]').focus();
  }
  if (dialog && typeof dialog.showModal === "function") {
    dialog.querySelector('button[value="cancel"]').addEventListener("click", function () { dialog.close("cancel"); });
    dialog.querySelector('button[value="confirm"]').addEventListener("click", function () { dialog.close("confirm"); });
    dialog.addEventListener("close", function () {
      // The close event is queued, not fired by close() itself: one from
      // an Escape may arrive after the dialog was opened again for the
      // next question, and must not answer that one.
      if (dialog.open) { return; }
      var p = pending;
      pending = null;
      if (!p) { return; }
      if (dialog.returnValue === "confirm") {
        p.form.setAttribute("data-confirmed", "");
        if (p.button) { p.form.requestSubmit(p.button); } else { p.form.requestSubmit(); }
      } else if (p.button) {
        p.button.focus();
      }
    });
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var button = e.submitter;
    var source = button && button.hasAttribute("data-confirm") ? button : form;
    if (!source.hasAttribute("data-confirm")) { return; }
    if (form.hasAttribute("data-confirmed")) {
      form.removeAttribute("data-confirmed");
      return;
    }
    e.preventDefault();
    if (dialog && typeof dialog.showModal === "function") {
      ask(form, button, source);
    } else if (window.confirm(source.getAttribute("data-confirm"))) {
      form.setAttribute("data-confirmed", "");
      if (button) { form.requestSubmit(button); } else { form.requestSubmit(); }
    }
  });

  // A dropdown never submits on its own (an arrow key changes it); Enter
  // submits its form, as in a text field.
  document.querySelectorAll("form select").forEach(function (select) {
    select.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && select.form && select.form.requestSubmit) {
        e.preventDefault();
        select.form.requestSubmit();
      }
    });
  });

  var local = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) { return; }
    var text = d.toLocaleString(undefined, local);
    if (t.hasAttribute("data-local")) {
      t.title = t.textContent.trim();
      t.textContent = text;
    } else {
      t.title = text + " · " + (t.title || d.toISOString());
    }
  });
})();
