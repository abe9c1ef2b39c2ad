// Admin page behaviours asked for with data- attributes (the CSP runs no inline handler).
(function () {
  "use strict";
  // <input data-select-on-click>: a click selects all of it (the API key shown once).
  document.addEventListener("click", (event) => {
    if (event.target.matches("[data-select-on-click]")) event.target.select();
  });
})();
