// Live calls: server-sent events from /api/live/events (fed by the bus, so calls on any
// worker show up). Text is set with textContent only: transcripts are caller-supplied.
// Needs turns.js.
(function () {
  "use strict";
  const grid = document.getElementById("live-calls");
  const empty = document.getElementById("live-empty");
  const state = document.getElementById("live-state");

  function card(sid) {
    let el = grid.querySelector(`article[data-call-sid="${CSS.escape(sid)}"]`);
    if (el) return el;
    el = document.createElement("article");
    el.className = "card live-call";
    el.dataset.callSid = sid;
    const h = document.createElement("h2");
    const a = document.createElement("a");
    a.href = "/calls/" + encodeURIComponent(sid);
    a.textContent = sid;
    h.appendChild(a);
    const meta = document.createElement("p");
    meta.className = "muted";
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = "in progress";
    meta.appendChild(status);
    const list = document.createElement("ol");
    list.className = "timeline";
    el.append(h, meta, list);
    grid.prepend(el);
    empty.hidden = true;
    return el;
  }

  function started(e) {
    const el = card(e.call_sid);
    el.querySelector("h2 a").textContent = `${e.from} → ${e.to}`;
    el.querySelector(".status").textContent = `in progress · ${e.agent}`;
  }

  function turn(e) {
    window.liveTurns.upsert(card(e.call_sid).querySelector("ol"), e);
  }

  function ended(e) {
    const el = card(e.call_sid);
    el.classList.add("ended");
    el.querySelector(".status").textContent = `ended (${e.reason})`;
  }

  const source = new EventSource("/api/live/events");
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "reconnecting…"; };
  source.onmessage = (message) => {
    const e = JSON.parse(message.data);
    if (e.type === "call_started") started(e);
    else if (e.type === "turn") turn(e);
    else if (e.type === "call_ended") ended(e);
  };
})();
