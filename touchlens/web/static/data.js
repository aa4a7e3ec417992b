// The Data page's actions (editors only): make a touchpoint from an unmapped event, clear the quarantine.
// Each is one call to /api; the page reloads to show the new counts.
"use strict";

(function () {
  const tl = () => window.touchlens;

  async function mapEvent(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const status = form.querySelector(".status");
    const value = (name) => form.elements[name].value.trim() || null;
    const body = { key: value("key"), name: value("name"), event: form.dataset.event, stage: value("stage"), channel: value("channel") };
    status.textContent = "Creating…";
    try {
      const answer = await tl().sendJSON("POST", "/api/touchpoints", body);
      status.textContent = "Created " + answer.touchpoint.key + ": " + answer.mapped.toLocaleString() + " events mapped";
      setTimeout(() => window.location.reload(), 800);
    } catch (error) {
      status.textContent = "Not created: " + error.message;
    }
  }

  async function clearQuarantine(event) {
    const button = event.currentTarget;
    const status = button.parentElement.querySelector(".status");
    if (!window.confirm("Delete every quarantined row?")) return;
    try {
      const answer = await tl().sendJSON("DELETE", "/api/quarantine");
      status.textContent = "Cleared " + answer.cleared.toLocaleString() + " rows";
      setTimeout(() => window.location.reload(), 600);
    } catch (error) {
      status.textContent = "Not cleared: " + error.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form.map-event").forEach((form) => form.addEventListener("submit", mapEvent));
    const clear = document.getElementById("clear-quarantine");
    if (clear) clear.addEventListener("click", clearQuarantine);
  });
})();
