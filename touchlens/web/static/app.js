// Shared helpers for the pages: every change sends the session's CSRF token. Plain ES2017, no build step.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// An error's detail as one line: FastAPI's validation errors are a list of {loc, msg}.
function problemText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d.loc || []).filter((x) => x !== "body").join(".") + ": " + d.msg).join("; ");
  }
  return detail ? JSON.stringify(detail) : "";
}

async function sendJSON(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    throw new Error(problemText(detail.detail) || response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

// The JSON a page carries in <script type="application/json" id="…"> (the CSP allows no inline scripts).
function pageData(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

let toastTimer = null;
function toast(message, isError) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
}

// Tables: a filter box (input.table-filter[data-table=ID]) and sortable columns (th[data-sort]).
function cellValue(row, index, kind) {
  const cell = row.cells[index];
  if (!cell) return kind === "num" ? -Infinity : "";
  const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  if (kind !== "num") return raw.toLowerCase();
  const value = parseFloat(String(raw).replace(/[^0-9.eE+-]/g, ""));
  return Number.isNaN(value) ? -Infinity : value;
}

function sortBy(header) {
  const table = header.closest("table");
  const body = table.tBodies[0];
  const index = Array.prototype.indexOf.call(header.parentNode.children, header);
  const kind = header.dataset.sort;
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th[data-sort]").forEach((th) => th.setAttribute("aria-sort", "none"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, kind);
    const y = cellValue(b, index, kind);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return ascending ? order : -order;
  });
  rows.forEach((row) => body.appendChild(row));
}

function setUpTables() {
  document.querySelectorAll("th[data-sort]").forEach((th) => {
    th.addEventListener("click", () => sortBy(th));
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(th); }
    });
  });
  document.querySelectorAll("input.table-filter").forEach((input) => {
    const table = document.getElementById(input.dataset.table);
    const counter = document.querySelector(".shown-count");
    input.addEventListener("input", () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      Array.from(table.tBodies[0].rows).forEach((row) => {
        const text = row.textContent.toLowerCase();
        const keep = words.every((w) => text.includes(w));
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      if (counter) counter.textContent = String(shown);
    });
  });
  document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
}

document.addEventListener("DOMContentLoaded", setUpTables);

window.touchlens = { csrfToken, sendJSON, pageData, problemText, toast };
