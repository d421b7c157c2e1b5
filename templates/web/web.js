// The web chat's page script: sends each action to POST /api/turn and shows what comes back.
// No framework and no build step; the captions come from the page (templates/web.html, `word`).
"use strict";
(function () {
  const words = JSON.parse(document.getElementById("words").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const log = $("log"), choices = $("choices"), typed = $("typed"), text = $("text");
  let busy = false;

  $("heading").textContent = words.heading;
  $("send").textContent = words.send;
  $("back").textContent = words.back;
  $("restart").textContent = words.restart;
  $("report").textContent = words.report;
  text.placeholder = words.placeholder;

  function say(html, kind) {
    const box = document.createElement("div");
    box.className = "turn " + kind;
    box.innerHTML = html; // escaped by the server's templates
    log.appendChild(box);
    box.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  function plain(text, kind, boxClass) { // a bubble of plain text (never markup)
    const box = document.createElement("div");
    box.className = boxClass;
    box.textContent = text;
    const turn = document.createElement("div");
    turn.className = "turn " + kind;
    turn.appendChild(box);
    log.appendChild(turn);
    return turn;
  }

  const note = (message) => plain(message, "advisor", "message notice").scrollIntoView({ block: "start" });
  const mine = (label) => plain(label, "person", "message");

  function setBusy(on) {
    busy = on;
    document.querySelectorAll("button, input").forEach((el) => { el.disabled = on; });
    document.body.classList.toggle("busy", on);
  }

  async function turn(body, label) {
    if (busy) return;
    if (label) mine(label);
    setBusy(true);
    try {
      const response = await fetch("api/turn", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        note(data.error || words.network);
        return;
      }
      show(data);
    } catch (error) {
      note(words.network);
    } finally {
      setBusy(false);
      const q = document.body.dataset.question;
      $("back").disabled = document.body.dataset.canGoBack !== "1";
      if (q) text.focus({ preventScroll: true });
    }
  }

  function button(label, onClick, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  function show(data) {
    if (data.html) say(data.html, "advisor");
    choices.replaceChildren();
    const q = data.question;
    document.body.dataset.question = q ? q.id : "";
    document.body.dataset.canGoBack = q && q.can_go_back ? "1" : "0";
    $("report").hidden = !data.recommendation;
    typed.hidden = !q;
    if (!q) {
      $("progress-text").textContent = "";
      $("bar").style.width = data.recommendation ? "100%" : "0";
      if (!data.recommendation) choices.appendChild(button(words.start, () => turn({ action: "start" })));
      return;
    }
    $("progress-text").textContent = words.progress.replace("{n}", q.number).replace("{total}", q.total);
    $("bar").style.width = Math.round((100 * (q.number - 1)) / Math.max(q.total, 1)) + "%";
    const proposed = new Set(q.proposed || []);
    if (q.multi) {
      const picked = new Set(proposed);
      q.options.forEach((o) => {
        const b = button(o.label, () => {
          if (picked.has(o.value)) picked.delete(o.value); else picked.add(o.value);
          b.setAttribute("aria-pressed", picked.has(o.value) ? "true" : "false");
        }, "option toggle");
        b.setAttribute("aria-pressed", picked.has(o.value) ? "true" : "false");
        b.dataset.value = o.value;
        choices.appendChild(b);
      });
      choices.appendChild(button(words.done, () => {
        const values = q.options.map((o) => o.value).filter((v) => picked.has(v));
        const labels = q.options.filter((o) => picked.has(o.value)).map((o) => o.label);
        turn({ choose: values }, labels.join(", "));
      }, "done"));
    } else {
      q.options.forEach((o) => {
        const b = button((proposed.has(o.value) ? "✅ " : "") + o.label,
          () => turn({ choose: [o.value] }, o.label), "option");
        b.dataset.value = o.value;
        choices.appendChild(b);
      });
    }
    if (q.skippable) choices.appendChild(button(words.skip, () => turn({ text: "skip" }, words.skip), "quiet"));
  }

  typed.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = text.value;
    text.value = "";
    turn({ text: value }, value || "↵");
  });
  $("back").addEventListener("click", () => turn({ action: "back" }, words.back));
  $("restart").addEventListener("click", () => turn({ action: "restart" }, words.restart));
  turn({ action: "start" });
})();
