// Admin page behaviours asked for with data- attributes (the CSP runs no inline handler).
(function () {
  "use strict";
  // <input data-select-on-click>: a click selects all of it (the API key shown once).
  document.addEventListener("click", (event) => {
    if (event.target.matches("[data-select-on-click]")) event.target.select();
  });

  // Schema forms (providers/admin_forms.py). show_on: a field (its widget carries
  // data-show-on='[{"variable","value"}]') shows when every condition holds; an option (a select's
  // option or a radio button, data-option-show-on) likewise. Hidden inputs are disabled, so they
  // are not sent. "__model_type" is the model type chosen (a model_type select) or fixed
  // (data-model-type).
  function valueOf(form, name) {
    if (name === "__model_type") {
      const chosen = form.querySelector('select[name="model_type"]');
      if (chosen) return chosen.value;
      const fixed = form.querySelector("[data-model-type]");
      return fixed ? fixed.dataset.modelType : "";
    }
    const box = form.querySelector(`input[type=checkbox][name="${name}"]`);
    if (box) return box.checked ? "true" : "false";
    const radios = form.querySelectorAll(`input[type=radio][name="${name}"]`);
    if (radios.length) {
      const checked = Array.from(radios).find((r) => r.checked);
      return checked ? checked.value : "";
    }
    const el = form.querySelector(`[name="${name}"]`);
    return el ? el.value : "";
  }
  function holds(form, json) {
    return JSON.parse(json).every((rule) => valueOf(form, rule.variable) === rule.value);
  }
  function applyShowOn(form) {
    form.querySelectorAll("[data-show-on]").forEach((widget) => {
      const visible = holds(form, widget.dataset.showOn);
      const row = widget.closest(".form-row") || widget.parentElement;
      row.hidden = !visible;
      row.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = !visible; });
    });
    form.querySelectorAll("[data-option-show-on]").forEach((option) => {
      const visible = holds(form, option.dataset.optionShowOn);
      option.disabled = !visible;
      if (option.tagName === "OPTION") option.hidden = !visible;
      else (option.closest("label") || option).parentElement.hidden = !visible;
    });
    // A choice that is no longer offered gives way to the first one that is.
    form.querySelectorAll("select").forEach((select) => {
      const chosen = select.selectedOptions[0];
      if (chosen && chosen.disabled) {
        const first = Array.from(select.options).find((o) => !o.disabled);
        if (first) select.value = first.value;
      }
    });
  }

  // A choice that shapes the form (workspace, provider, model, model type: data-reload) reloads
  // the add page with what was chosen so far (data-reload and data-carry fields).
  function reload(form) {
    const params = new URLSearchParams();
    form.querySelectorAll("[data-reload], [data-carry]").forEach((el) => {
      if (el.value) params.set(el.name, el.value);
    });
    window.location.search = params.toString();
  }

  document.addEventListener("change", (event) => {
    const form = event.target.closest("form");
    if (!form) return;
    if (event.target.matches("[data-reload]")) reload(form);
    else if (form.querySelector("[data-show-on], [data-option-show-on]")) applyShowOn(form);
  });
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form").forEach((form) => {
      if (form.querySelector("[data-show-on], [data-option-show-on]")) applyShowOn(form);
    });
  });
})();
