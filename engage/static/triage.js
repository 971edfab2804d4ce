/* Keyboard control of the triage inbox and of one comment's page.
   Only an enhancement: every key presses a button or follows a link that is on the page. */
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.inbox tr.row"));
  var current = -1;

  function typing(event) {
    var t = event.target;
    if (!t) { return false; }
    if (t.tagName === "INPUT") {
      // A ticked box or a pressed button keeps no text: shortcuts still work from there.
      return !/^(checkbox|radio|submit|button|reset)$/.test(t.type);
    }
    return t.isContentEditable || /^(TEXTAREA|SELECT)$/.test(t.tagName);
  }

  function focusRow(index) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach(function (row, i) { row.classList.toggle("current", i === current); });
    rows[current].focus();
    rows[current].scrollIntoView({block: "nearest"});
  }

  function rowLink(anchor) {
    var link = rows[current] && rows[current].querySelector("a.open");
    if (link) { window.location.href = link.href + (anchor || ""); }
  }

  function bulk(action) {
    var form = document.getElementById("bulk");
    var box = rows[current] && rows[current].querySelector("input[name=ids]");
    if (!form || !box) { return; }
    form.querySelectorAll("input[name=ids]").forEach(function (b) { b.checked = b === box; });
    var button = form.querySelector("button[name=action][value=" + action + "]");
    if (button) { button.click(); }
  }

  function press(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  function focusOn(selector) {
    var el = document.querySelector(selector);
    if (el) {
      var details = el.closest("details");
      if (details) { details.open = true; }
      el.scrollIntoView({block: "center"});
      el.focus();
    }
  }

  rows.forEach(function (row, i) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "A" && event.target.tagName !== "INPUT") { focusRow(i); }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event)) { return; }
    var key = event.key;
    var inbox = rows.length > 0;
    if (key === "?") {
      var keys = document.getElementById("keys");
      if (keys) { keys.open = !keys.open; }
    } else if (inbox && (key === "j" || key === "k")) {
      focusRow(current < 0 ? 0 : current + (key === "j" ? 1 : -1));
    } else if (inbox && current >= 0 &&
               (key === "o" || (key === "Enter" && event.target === rows[current]))) {
      // Enter on another link or button must do what that one does.
      rowLink("");
    } else if (inbox && key === "x" && current >= 0) {
      var box = rows[current].querySelector("input[name=ids]");
      if (box) { box.checked = !box.checked; }
    } else if (inbox && key === "c" && current >= 0) {
      bulk("confirm");
    } else if (inbox && key === "d" && current >= 0) {
      bulk("close");
    } else if (inbox && key === "e" && current >= 0) {
      rowLink("#theme-picker");
    } else if (inbox && key === "a" && current >= 0) {
      rowLink("#workflow");
    } else if (inbox && key === "r" && current >= 0) {
      rowLink("#replies");
    } else if (!inbox && "jkucd".indexOf(key) >= 0) {
      if (!press("[data-key=" + key + "]")) { return; }
    } else if (!inbox && key === "e") {
      focusOn("#theme-picker input[type=checkbox]");
    } else if (!inbox && key === "a") {
      focusOn("#assignee");
    } else if (!inbox && key === "r") {
      focusOn("#reply-body");
    } else {
      return;
    }
    event.preventDefault();
  });

  if (window.location.hash === "#theme-picker") { focusOn("#theme-picker input[type=checkbox]"); }
  if (window.location.hash === "#workflow") { focusOn("#assignee"); }
  if (window.location.hash === "#replies") { focusOn("#reply-body"); }
}());
