// The recording and the transcript in step: the turn being heard is highlighted, and
// clicking a turn plays the recording from it. Turn times are seconds from the start of
// the call, which is t=0 of the recording.
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
