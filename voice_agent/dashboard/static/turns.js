// A turn from the live event stream, put in its place in a transcript list: the same seq
// again replaces the turn (a barge-in trims it to what was heard). Shared by the live
// calls page and a call's own page. Text is set with textContent only: transcripts are
// caller-supplied.
window.liveTurns = (function () {
  "use strict";

  function who(role) {
    return role === "caller" ? "Caller" : role === "agent" ? "Agent" : "Event";
  }

  // `stamp`, when given, is the text of the turn's time stamp (the call page has them).
  function upsert(list, e, stamp) {
    let li = list.querySelector(`li[data-seq="${e.seq}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.seq = e.seq;
      if (stamp !== undefined) {
        const s = document.createElement("span");
        s.className = "stamp";
        li.append(s, document.createTextNode(" "));
      }
      const name = document.createElement("span");
      name.className = "who";
      const text = document.createElement("span");
      text.className = "text";
      li.append(name, document.createTextNode(" "), text);
      const later = Array.from(list.children).find((x) => Number(x.dataset.seq) > e.seq);
      list.insertBefore(li, later || null);
    }
    li.className = `turn ${e.role}` + (e.interrupted ? " interrupted" : "");
    if (stamp !== undefined) li.querySelector(".stamp").textContent = stamp;
    li.querySelector(".who").textContent = who(e.role);
    li.querySelector(".text").textContent = e.text;
    return li;
  }

  return { upsert: upsert };
})();
