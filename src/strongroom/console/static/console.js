// Strongroom console: the little the pages need beyond HTML. Without it every form still
// works; the server checks everything again.
"use strict";

function checkPolicy(text) {
  // The error to show for a key policy, or "" when it is a JSON object with a Statement.
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return "Not valid JSON: " + e.message;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return "A key policy is a JSON object.";
  }
  if (!("Statement" in doc)) {
    return "A key policy needs a Statement.";
  }
  return "";
}

function jsonEditor(form) {
  const area = form.querySelector("textarea");
  const status = form.querySelector("[aria-live]");
  const save = form.querySelector("button[type=submit]");
  const format = form.querySelector("#policy-format");
  const update = () => {
    const problem = checkPolicy(area.value);
    area.setAttribute("aria-invalid", problem ? "true" : "false");
    status.textContent = problem || "Valid JSON.";
    status.className = problem ? "hint invalid" : "hint valid";
    return problem;
  };
  area.addEventListener("input", update);
  if (format) {
    format.addEventListener("click", () => {
      if (!update()) area.value = JSON.stringify(JSON.parse(area.value), null, 2);
    });
  }
  form.addEventListener("submit", (event) => {
    if (update()) {
      event.preventDefault();
      area.focus();
    }
  });
  if (save) update();
}

function keySpecUsages(form) {
  const spec = form.querySelector("#KeySpec");
  const usage = form.querySelector("#KeyUsage");
  const update = () => {
    const allowed = (spec.selectedOptions[0].dataset.usages || "").split(" ");
    let first = null;
    for (const option of usage.options) {
      option.disabled = !allowed.includes(option.value);
      if (!option.disabled && first === null) first = option;
    }
    if (usage.selectedOptions[0].disabled && first) usage.value = first.value;
  };
  spec.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-json-editor]").forEach(jsonEditor);
  const create = document.getElementById("create-key-form");
  if (create) keySpecUsages(create);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  const flash = document.getElementById("flash");
  if (flash) flash.setAttribute("tabindex", "-1");
});
