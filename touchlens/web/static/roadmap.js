// The roadmap's Suggest button (editors only): POST /api/roadmap/suggest with the session's CSRF token (as every
// change the board sends), then reload the board and say what changed: cards added, cards refreshed, suggestions
// linked to cards people wrote, and earlier suggestions the data no longer supports (dropped).
"use strict";

(function () {
  const NOTE = "touchlens.suggested";
  const tl = () => window.touchlens;

  function boardKeys() {
    return Array.from(document.querySelectorAll(".opp-card[data-key]")).map((card) => card.dataset.key);
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function summary(before, answer) {
    const linked = new Set(answer.kept || []);
    const mine = (answer.suggested || []).map((c) => c.key).filter((key) => !linked.has(key));
    const added = mine.filter((key) => !before.includes(key)).length;
    const parts = [];
    if (added) parts.push(plural(added, "card added", "cards added"));
    if (mine.length - added) parts.push(plural(mine.length - added, "card refreshed", "cards refreshed"));
    if (linked.size) parts.push(linked.size + " linked to your cards");
    return parts;
  }

  async function suggest(button, status) {
    button.disabled = true;
    status.textContent = "Suggesting from the latest findings…";
    const before = boardKeys();
    try {
      const answer = await tl().sendJSON("POST", "/api/roadmap/suggest");
      sessionStorage.setItem(NOTE, JSON.stringify({ before, parts: summary(before, answer) }));
      window.location.reload();
    } catch (error) {
      status.textContent = "Nothing suggested: " + error.message;
      button.disabled = false;
    }
  }

  // After the reload: what the suggestion did, counting the cards that left the board as dropped.
  function report(status) {
    const note = sessionStorage.getItem(NOTE);
    if (!note) return;
    sessionStorage.removeItem(NOTE);
    const { before, parts } = JSON.parse(note);
    const now = boardKeys();
    const dropped = before.filter((key) => !now.includes(key)).length;
    if (dropped) parts.push(plural(dropped, "stale suggestion dropped", "stale suggestions dropped"));
    status.textContent = parts.length ? parts.join(", ") + "." : "Nothing new: the board already holds every suggestion.";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("suggest");
    const status = document.getElementById("suggest-status");
    if (!button || !status) return;
    report(status);
    button.addEventListener("click", () => suggest(button, status));
  });
})();
