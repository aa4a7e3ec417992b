// Editing in place (editors only; viewers get no controls): touchpoint forms, stage lists and emotions on the
// canvas, dragging cards between canvas cells and between roadmap columns. Every change is a PATCH to /api.
"use strict";

(function () {
  const NONE = "-";
  const tl = () => window.touchlens;

  // ---- touchpoint forms: send only the fields that changed --------------------------------------------------
  function fieldValue(input) {
    const text = input.value.trim();
    if (input.dataset.kind === "list") return text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
    if (text === "") return null;
    if (input.dataset.kind === "bool") return text === "yes";
    if (input.dataset.kind === "number") {
      const value = Number(text);
      return Number.isNaN(value) ? text : value;
    }
    return input.value;
  }

  function formBody(form) {
    const body = {};
    form.querySelectorAll("[name]").forEach((input) => {
      const [head, tail] = input.name.split(".");
      const value = fieldValue(input);
      if (tail === undefined) { body[head] = value; return; }
      body[head] = body[head] || {};
      body[head][tail] = value;
    });
    // A nested object with nothing in it is no object at all.
    Object.keys(body).forEach((key) => {
      const v = body[key];
      if (v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => x === null)) body[key] = null;
    });
    return body;
  }

  function snapshot(form) { form.dataset.initial = JSON.stringify(formBody(form)); }

  function changes(form) {
    const before = JSON.parse(form.dataset.initial || "{}");
    const now = formBody(form);
    const out = {};
    Object.keys(now).forEach((key) => {
      if (JSON.stringify(now[key]) !== JSON.stringify(before[key])) out[key] = now[key];
    });
    return out;
  }

  async function saveForm(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const status = form.querySelector(".status");
    const body = changes(form);
    if (Object.keys(body).length === 0) { status.textContent = "Nothing changed"; return; }
    status.textContent = "Saving…";
    try {
      await tl().sendJSON("PATCH", form.dataset.endpoint, body);
      snapshot(form);
      status.textContent = "Saved";
      form.dispatchEvent(new CustomEvent("touchpoint-saved", { detail: body }));
    } catch (error) {
      status.textContent = "Not saved: " + error.message;
    }
  }

  function setUpForms() {
    document.querySelectorAll("form.tp-form").forEach((form) => {
      snapshot(form);
      form.addEventListener("submit", saveForm);
    });
  }

  // ---- canvas: the edit panel -------------------------------------------------------------------------------
  function setUpPanel() {
    const panel = document.getElementById("tp-panel");
    if (!panel) return;
    const form = panel.querySelector("form");
    const data = tl().pageData("tp-data") || {};
    let current = null;
    document.querySelectorAll(".card .card-edit").forEach((button) => {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        current = button.closest(".card").dataset.touchpoint;
        const tp = data[current] || {};
        form.querySelectorAll("[name]").forEach((input) => {
          const [head, tail] = input.name.split(".");
          const value = tail === undefined ? tp[head] : (tp[head] || {})[tail];
          input.value = value === null || value === undefined ? "" : value;
        });
        form.dataset.endpoint = "/api/touchpoints/" + encodeURIComponent(current);
        panel.querySelector("#tp-panel-title").textContent = tp.name || current;
        panel.querySelector("a.more").href = "/touchpoints/" + encodeURIComponent(current);
        form.querySelector(".status").textContent = "";
        snapshot(form);
        panel.hidden = false;
        form.querySelector("[name=expectations]").focus();
      });
    });
    panel.querySelector("[data-close]").addEventListener("click", () => { panel.hidden = true; });
    form.addEventListener("touchpoint-saved", (event) => {
      const tp = data[current] || (data[current] = {});
      const body = event.detail;
      Object.keys(body).forEach((key) => { tp[key] = body[key]; });
      if ("name" in body) {
        const card = document.querySelector('.card[data-touchpoint="' + CSS.escape(current) + '"] .card-name');
        if (card) card.textContent = body.name || current;
      }
    });
  }

  // ---- canvas: stage lists and emotions ---------------------------------------------------------------------
  function stageUrl(element) {
    return "/api/journeys/" + encodeURIComponent(element.dataset.journey) + "/stages/" +
      encodeURIComponent(element.dataset.stage);
  }

  function listItems(element) {
    return element.innerText.split("\n").map((s) => s.trim()).filter(Boolean);
  }

  // The designed line of `journey` on the emotion curve, with the stage's new emotion.
  function redrawEmotion(journey, stage, value) {
    const chart = document.getElementById("emotion-chart");
    const curve = tl().pageData("emotion-data");
    if (!chart || !curve || !chart.data || typeof Plotly === "undefined") return;
    const trace = curve.designed.findIndex((d) => d.key === journey);
    const at = curve.keys.indexOf(stage);
    if (trace < 0 || at < 0) return;
    const y = chart.data[trace].y.slice();
    y[at] = value;
    Plotly.restyle(chart, { y: [y] }, [trace]);
  }

  function setUpStages() {
    document.querySelectorAll(".list-edit").forEach((element) => {
      let before = JSON.stringify(listItems(element));
      element.addEventListener("blur", async () => {
        const items = listItems(element);
        if (JSON.stringify(items) === before) return;
        try {
          await tl().sendJSON("PATCH", stageUrl(element), { [element.dataset.field]: items });
          before = JSON.stringify(items);
          tl().toast("Saved " + element.dataset.field + " of " + element.dataset.stage);
        } catch (error) {
          tl().toast("Not saved: " + error.message, true);
        }
      });
    });
    document.querySelectorAll("select.emotion-edit").forEach((select) => {
      select.addEventListener("change", async () => {
        const value = select.value === "" ? null : Number(select.value);
        try {
          await tl().sendJSON("PATCH", stageUrl(select), { emotion: value });
          redrawEmotion(select.dataset.journey, select.dataset.stage, value);
          tl().toast("Saved the emotion of " + select.dataset.stage);
        } catch (error) {
          tl().toast("Not saved: " + error.message, true);
        }
      });
    });
  }

  // ---- dragging: canvas cards between cells, roadmap cards between columns ---------------------------------
  function draggable(cardSelector, zoneSelector, move) {
    let dragged = null;
    document.querySelectorAll(cardSelector + "[draggable=true]").forEach((card) => {
      card.querySelectorAll("a").forEach((a) => a.setAttribute("draggable", "false"));
      card.addEventListener("dragstart", (event) => {
        dragged = card;
        card.classList.add("dragging");
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", card.dataset.touchpoint || card.dataset.key || "");
      });
      card.addEventListener("dragend", () => { card.classList.remove("dragging"); dragged = null; });
    });
    document.querySelectorAll(zoneSelector).forEach((zone) => {
      zone.addEventListener("dragover", (event) => {
        if (!dragged) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        zone.classList.add("over");
      });
      zone.addEventListener("dragleave", () => zone.classList.remove("over"));
      zone.addEventListener("drop", async (event) => {
        event.preventDefault();
        zone.classList.remove("over");
        const card = dragged;
        if (!card) return;
        const from = card.parentNode;
        const next = card.nextSibling;
        const target = zone.querySelector(".drop") || zone;
        if (target === from) return;
        target.appendChild(card);
        try {
          await move(card, zone);
        } catch (error) {
          from.insertBefore(card, next);
          tl().toast("Not moved: " + error.message, true);
        }
      });
    });
  }

  async function moveTouchpoint(card, cell) {
    const stage = cell.dataset.stage === NONE ? null : cell.dataset.stage;
    const channel = cell.dataset.channel === NONE ? null : cell.dataset.channel;
    await tl().sendJSON("PATCH", "/api/touchpoints/" + encodeURIComponent(card.dataset.touchpoint), { stage, channel });
    tl().toast("Moved " + card.dataset.touchpoint + " to " + (stage || "no stage") + " · " + (channel || "no channel"));
  }

  // The Done column sets the status and keeps the horizon; a card taken out of Done is planned again.
  async function moveOpportunity(card, column) {
    const horizon = column.dataset.horizon;
    const body = horizon ? { horizon } : { status: "done" };
    if (horizon && card.dataset.status === "done") body.status = "planned";
    await tl().sendJSON("PATCH", "/api/roadmap/" + encodeURIComponent(card.dataset.key), body);
    if (body.status) card.dataset.status = body.status;
    document.querySelectorAll(".lane-col").forEach((col) => {
      col.querySelector(".count").textContent = String(col.querySelectorAll(".opp-card").length);
    });
    tl().toast(horizon ? "Moved to " + horizon : "Marked done");
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpForms();
    setUpPanel();
    setUpStages();
    draggable(".card", "td.cell", moveTouchpoint);
    draggable(".opp-card", ".lane-col", moveOpportunity);
  });
})();
