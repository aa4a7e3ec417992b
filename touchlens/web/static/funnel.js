// The funnel builder: add and remove steps; running it puts the whole query in the URL so it can be shared.
"use strict";

(function () {
  function setUp() {
    const form = document.getElementById("funnel-form");
    if (!form) return;
    const list = document.getElementById("funnel-steps");
    const template = document.getElementById("step-template");
    function wire(item) {
      item.querySelector(".remove-step").addEventListener("click", () => {
        if (list.children.length > 1) item.remove();
      });
    }
    Array.from(list.children).forEach(wire);
    document.getElementById("add-step").addEventListener("click", () => {
      const item = template.content.firstElementChild.cloneNode(true);
      list.appendChild(item);
      wire(item);
      item.querySelector("select").focus();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const steps = Array.from(list.querySelectorAll("select")).map((s) => s.value).filter(Boolean);
      const query = new URLSearchParams({ steps: steps.join(","), window: form.window.value.trim() || "7d",
        order: form.order.value });
      if (form.breakdown.value.trim()) query.set("breakdown", form.breakdown.value.trim());
      window.location.assign("/funnel?" + query.toString());
    });
  }
  document.addEventListener("DOMContentLoaded", setUp);
})();
