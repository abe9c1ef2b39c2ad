// A little plain JavaScript: the modal dialog, show_on conditions, the provider search, and the
// small behaviours pages ask for with data- attributes (the CSP runs no inline handler).
(function () {
  "use strict";
  const dialog = () => document.getElementById("dialog");
  // htmx "settles" a swap by copying class, style, width and height from each old element to
  // the new one of the same id. The page sets no inline style (the CSP forbids it), but the
  // browser may leave an empty style="" on an input it filled; copying that is refused under
  // the CSP. Settle without it.
  if (window.htmx) window.htmx.config.attributesToSettle = ["class", "width", "height"];

  // <select data-submit-on-change>: its form is sent when it changes (htmx forms included).
  document.addEventListener("change", (event) => {
    const form = event.target.closest("[data-submit-on-change]") && event.target.form;
    if (form) form.requestSubmit();
  });
  // <form data-confirm="question">: sent only once the question is answered yes.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
  // <button data-copy="element id" data-done="label">: copies that element's text.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    navigator.clipboard.writeText(source.textContent.trim());
    if (button.dataset.done) button.textContent = button.dataset.done;
  });

  // htmx puts a fragment into the dialog body: open it, focus the first field.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "dialog-body") {
      const d = dialog();
      if (!d.open) d.showModal();
      // The first field (not the close button): [data-autofocus] (not the browser's autofocus,
      // which it applies later, while someone may be typing), else a form's first control, else
      // any control.
      const field = "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea";
      const first = d.querySelector("[data-autofocus]") || d.querySelector(`form ${field}`) ||
        d.querySelector(`${field}, button`);
      if (first) first.focus();
      applyShowOn(d);
    }
  });
  // The server closes the dialog by sending the HX-Trigger "close-dialog".
  document.addEventListener("close-dialog", () => { if (dialog().open) dialog().close(); });
  document.addEventListener("click", (event) => {
    if (event.target.matches("[data-close-dialog]")) dialog().close();
  });

  // show_on: a field is shown when every condition holds (data-show-on='[{"variable","value"}]').
  function valueOf(form, name) {
    if (name === "__model_type") {
      const fixed = form.querySelector("[data-model-type]");
      return form.querySelector('[name="model_type"]') ? valueOf(form, "model_type") : fixed ? fixed.value : "";
    }
    const checked = form.querySelector(`[name="${name}"]:checked`);
    if (checked) return checked.value;
    const box = form.querySelector(`input[type=checkbox][name="${name}"]`);
    if (box) return box.checked ? "true" : "false";
    const el = form.querySelector(`[name="${name}"]`);
    return el ? el.value : "";
  }
  function applyShowOn(root) {
    root.querySelectorAll("form").forEach((form) => {
      form.querySelectorAll("[data-show-on]").forEach((field) => {
        const rules = JSON.parse(field.dataset.showOn);
        const visible = rules.every((r) => valueOf(form, r.variable) === r.value);
        field.hidden = !visible;
        if (field.tagName === "OPTION") field.disabled = !visible;
        field.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = !visible; });
      });
      // A choice that is no longer offered gives way to the first one that is.
      form.querySelectorAll("select").forEach((select) => {
        const chosen = select.selectedOptions[0];
        if (chosen && chosen.disabled) {
          const first = Array.from(select.options).find((o) => !o.disabled);
          if (first) select.value = first.value;
        }
      });
    });
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest("form");
    if (form) applyShowOn(form.parentElement || form);
  });

  // hx-confirm on a switch: answered no, the switch goes back to where it was.
  document.addEventListener("htmx:confirm", (event) => {
    const el = event.detail.elt;
    if (!event.detail.question || !el.matches("input[type=checkbox]")) return;
    event.preventDefault();
    if (window.confirm(event.detail.question)) event.detail.issueRequest(true);
    else el.checked = !el.checked;
  });

  // Provider search and model-type filter (client side: all cards are on the page). A card
  // matches when every word searched is in its data-search text (names, descriptions, model
  // names); a group whose cards are all hidden hides its heading too; the live region under the
  // toolbar says when nothing matches.
  function filterCards() {
    const search = document.getElementById("provider-search");
    const type = document.getElementById("provider-type");
    if (!search || !type) return;
    const query = search.value.trim();
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    document.querySelectorAll(".card[data-search]").forEach((card) => {
      const text = card.dataset.search;
      const byText = words.every((word) => text.includes(word));
      const byType = !type.value || card.dataset.types.split(" ").includes(type.value);
      card.hidden = !(byText && byType);
      if (!card.hidden) shown += 1;
    });
    document.querySelectorAll("[data-card-group]").forEach((group) => {
      group.hidden = !group.querySelector(".card[data-search]:not([hidden])");
    });
    const result = document.getElementById("provider-search-result");
    if (result) {
      let message = "";
      if (!shown && words.length) message = result.dataset.noMatch.replace("{query}", query);
      else if (!shown) message = result.dataset.noTypeMatch;
      if (result.textContent !== message) result.textContent = message;
    }
  }
  document.addEventListener("input", (event) => {
    if (event.target.id === "provider-search") filterCards();
  });
  document.addEventListener("change", (event) => {
    if (event.target.id === "provider-type") filterCards();
  });
  // A card refreshed by htmx (its checks, a change) keeps the search applied and its list of
  // what failed open if it was.
  const openProblems = new Set();
  document.addEventListener("htmx:beforeSwap", (event) => {
    const card = event.detail.target;
    if (!card || !card.matches || !card.matches(".card[data-search]")) return;
    if (card.querySelector("details.problems[open]")) openProblems.add(card.id);
    else openProblems.delete(card.id);
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    const id = event.detail.target && event.detail.target.id;
    if (!id || !id.startsWith("card-")) return;
    const details = document.querySelector(`#${CSS.escape(id)} details.problems`);
    if (details && openProblems.has(id)) details.open = true;
    filterCards();
  });
})();
