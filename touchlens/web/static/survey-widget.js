/* touchlens survey widget: a signed survey link's question, asked inside any web page.

     <div data-touchlens-survey="https://cx.example.com/s/v1.TOKEN"></div>
     <script src="https://cx.example.com/static/survey-widget.js" defer></script>

   One static file. It talks to the touchlens server named in the link and nothing else, runs no inline code,
   sets text only as text, and styles through the CSSOM, which a strict Content-Security-Policy allows: the host
   page's policy needs the touchlens origin in script-src and connect-src, nothing more. When the answer is
   stored the container fires a `touchlens:answered` event. */
(function () {
  "use strict";

  var ACCEPT = { Accept: "application/json" };
  var BUTTON = { minWidth: "2.6rem", minHeight: "2.6rem", margin: "0 .3rem .3rem 0", border: "2px solid #8a96a3",
                 borderRadius: ".4rem", background: "#fff", font: "inherit", fontWeight: "600", cursor: "pointer" };
  var CHOSEN = { background: "#1f5fbf", borderColor: "#1f5fbf", color: "#fff" };

  function el(tag, text, style) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    styled(node, style);
    return node;
  }

  function styled(node, style) {
    if (style) Object.keys(style).forEach(function (k) { node.style[k] = style[k]; });
    return node;
  }

  function request(url, fields) {
    var options = { headers: ACCEPT, credentials: "omit", mode: "cors", cache: "no-store" };
    if (fields) {
      var body = new URLSearchParams();
      Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
      options.method = "POST";
      options.body = body;  // a form body: a simple cross-origin request, no preflight
    }
    return fetch(url, options).then(function (r) { return r.json(); });
  }

  function say(box, text) {
    var note = el("p", text, { margin: "0" });
    note.setAttribute("role", "status");
    box.replaceChildren(note);
  }

  function ask(box, link, data) {
    var q = data.question;
    var chosen = null;
    var form = el("form", null, { margin: "0" });
    var group = el("div");
    group.setAttribute("role", "radiogroup");
    var title = el("p", q.text, { fontWeight: "600", margin: "0 0 .5rem" });
    title.id = "tl-q-" + Math.random().toString(36).slice(2);
    group.setAttribute("aria-labelledby", title.id);
    var buttons = q.scores.map(function (score) {
      var b = el("button", score, BUTTON);
      b.type = "button";
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", "false");
      b.addEventListener("click", function () {
        chosen = score;
        buttons.forEach(function (other) {
          other.setAttribute("aria-checked", String(other === b));
          styled(other, other === b ? CHOSEN : { background: "#fff", borderColor: "#8a96a3", color: "" });
        });
      });
      group.appendChild(b);
      return b;
    });
    var ends = el("p", q.scores[0] + " = " + q.low + " · " + q.scores[q.scores.length - 1] + " = " + q.high,
                  { fontSize: ".85rem", margin: ".2rem 0 .6rem", color: "#4a5562" });
    var comment = null;
    form.append(title, group, ends);
    if (q.comment) {
      comment = el("textarea", null, { width: "100%", boxSizing: "border-box", font: "inherit" });
      comment.rows = 3;
      comment.maxLength = 5000;
      comment.setAttribute("aria-label", "Anything you would like to tell us? (optional)");
      comment.placeholder = "Anything you would like to tell us? (optional)";
      form.appendChild(comment);
    }
    var problem = el("p", null, { color: "#a4161a", margin: ".4rem 0" });
    problem.setAttribute("role", "alert");
    var send = el("button", "Send", { marginTop: ".5rem", padding: ".5rem 1.5rem", font: "inherit",
                                      fontWeight: "700", color: "#fff", background: "#1f5fbf", border: "0",
                                      borderRadius: ".4rem", cursor: "pointer" });
    send.type = "submit";
    form.append(problem, send);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (chosen === null) { problem.textContent = "Choose a score first."; return; }
      send.disabled = true;
      request(link, { score: String(chosen), comment: comment ? comment.value : "" }).then(function (answer) {
        send.disabled = false;
        if (answer.step === "ask") { problem.textContent = answer.problem || "Please try again."; return; }
        show(box, link, answer);
        if (answer.step === "thanks") box.dispatchEvent(new CustomEvent("touchlens:answered", { bubbles: true }));
      }, function () { send.disabled = false; problem.textContent = "Could not send: please try again."; });
    });
    box.replaceChildren(form);
  }

  function show(box, link, data) {
    if (data.step === "ask" && data.question) ask(box, link, data);
    else if (data.step === "thanks") say(box, "Thank you for your answer.");
    else say(box, data.problem ? data.problem.charAt(0).toUpperCase() + data.problem.slice(1) + "." : "");
  }

  function start(box) {
    if (box.getAttribute("data-touchlens-ready")) return;
    box.setAttribute("data-touchlens-ready", "1");
    var link;
    try { link = new URL(box.getAttribute("data-touchlens-survey"), document.baseURI); } catch (e) { return; }
    if (!/^https?:$/.test(link.protocol) || !/^\/s\/[^/]+$/.test(link.pathname)) return;  // only a survey link
    link.search = "";
    request(link.href).then(function (data) { show(box, link.href, data); },
                            function () { say(box, "The survey could not be loaded."); });
  }

  function startAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-touchlens-survey]"), start);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
