// Uploads on the Data page: XMLHttpRequest so the progress bar follows the upload; the page reloads after.
"use strict";

(function () {
  const KEPT = "touchlens-upload-report";

  function summary(report) {
    const parts = ["read", "accepted", "duplicates", "quarantined", "unmapped"]
      .filter((k) => typeof report[k] === "number").map((k) => report[k].toLocaleString() + " " + k);
    // The unmapped events by name: what to map next (the table below offers to).
    const named = Object.entries(report.unmapped_events || {}).map(([event, n]) => event + " " + n.toLocaleString());
    if (named.length) parts.push("unmapped by event: " + named.join(", "));
    return parts.length ? parts.join(", ") : "done";
  }

  function upload(form) {
    const file = form.querySelector("input[type=file]").files[0];
    const bar = form.querySelector("progress");
    const status = form.querySelector(".status");
    if (!file) { status.textContent = "Choose a file first."; return; }
    const data = new FormData();
    data.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.endpoint);
    request.setRequestHeader("X-CSRF-Token", window.touchlens.csrfToken());
    request.responseType = "json";
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading " + file.name + "…";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    request.upload.addEventListener("load", () => { bar.value = 100; status.textContent = "Ingesting " + file.name + "…"; });
    request.addEventListener("load", () => {
      const body = request.response || {};
      if (request.status >= 200 && request.status < 300) {
        status.textContent = "Ingested " + file.name + ": " + summary(body);
        // Kept across the reload that refreshes the counts and the history.
        sessionStorage.setItem(KEPT, JSON.stringify({ endpoint: form.dataset.endpoint, text: status.textContent }));
        setTimeout(() => window.location.reload(), 600);
      } else {
        status.textContent = "Not ingested: " + (window.touchlens.problemText(body.detail) || request.statusText);
      }
    });
    request.addEventListener("error", () => { status.textContent = "The upload failed (network)."; });
    request.send(data);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const kept = JSON.parse(sessionStorage.getItem(KEPT) || "null");
    sessionStorage.removeItem(KEPT);
    document.querySelectorAll("form.upload").forEach((form) => {
      if (kept && kept.endpoint === form.dataset.endpoint) form.querySelector(".status").textContent = kept.text;
      form.addEventListener("submit", (event) => { event.preventDefault(); upload(form); });
    });
  });
})();
