// A call's page. Once it has ended: the recording and the transcript in step, the turn
// being heard highlighted, and clicking a turn plays the recording from it. Turn times are
// seconds from the start of the call, which is t=0 of the recording. While it runs: the
// transcript grows from the live event stream, and the page reloads to its full form
// (recording, latency) once the call ends. Needs turns.js.
(function () {
  "use strict";
  const player = document.getElementById("player");
  const turns = Array.from(document.querySelectorAll("#timeline .turn[data-start]"));
  if (!player || turns.length === 0) return;
  const starts = turns.map((el) => parseFloat(el.dataset.start));
  let current = null;

  function turnAt(t) {
    // The last turn that has started by time t.
    let found = -1;
    for (let i = 0; i < starts.length; i++) {
      if (starts[i] <= t + 0.05) found = i; else break;
    }
    return found;
  }

  function highlight() {
    const index = turnAt(player.currentTime);
    const el = index >= 0 ? turns[index] : null;
    if (el === current) return;
    if (current) current.classList.remove("current");
    current = el;
    if (el) {
      el.classList.add("current");
      el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  player.addEventListener("timeupdate", highlight);
  player.addEventListener("seeked", highlight);

  function seek(el) {
    player.currentTime = parseFloat(el.dataset.start);
    highlight();
    const playing = player.play();
    if (playing && playing.catch) playing.catch(() => {});
  }
  for (const el of turns) {
    el.addEventListener("click", () => seek(el));
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); seek(el); }
    });
  }
})();

(function () {
  "use strict";
  const list = document.getElementById("timeline");
  if (!list || !("live" in list.dataset)) return;
  const sid = list.dataset.callSid;
  const startedMs = Number(list.dataset.startedMs);
  const badge = document.getElementById("call-live");
  const status = document.getElementById("call-status");

  function clock(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? `${h}:` : "") + `${mm}:${String(s).padStart(2, "0")}`;
  }

  const source = new EventSource("/api/live/events?call_sid=" + encodeURIComponent(sid));
  source.onopen = () => { badge.textContent = "live"; };
  source.onerror = () => { badge.textContent = "reconnecting…"; };
  source.onmessage = (message) => {
    const e = JSON.parse(message.data);
    if (e.call_sid !== sid) return;
    if (e.type === "turn") {
      const empty = list.querySelector("li.empty");
      if (empty) empty.remove();
      const offset = (Date.parse(e.started_at) - startedMs) / 1000;
      window.liveTurns.upsert(list, e, clock(offset));
    } else if (e.type === "call_ended") {
      source.close();
      badge.textContent = "ended";
      status.textContent = e.status;
      status.className = `pill ${e.status}`;
      // The ended call is written a moment later; then the page shows its recording.
      setTimeout(() => window.location.reload(), 1500);
    }
  };
})();
