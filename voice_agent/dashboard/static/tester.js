// Trying the draft agent from the portal: a text chat, and a voice call from the browser.
// The voice call speaks Twilio Media Streams' JSON over a websocket: 8 kHz mu-law frames
// of 20 ms out, the agent's audio (mu-law) and marks back; marks are echoed once their
// audio has played, clears drop what is queued, as Twilio does. Text is set with
// textContent only: transcripts are caller- and tenant-supplied.
(function () {
  "use strict";
  const root = document.getElementById("testers");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const base = root.dataset.base; // /portal/{tenant}/agents/{slug}

  // --- text chat ------------------------------------------------------------------------
  const chatForm = document.getElementById("chat-form");
  const chatLog = document.getElementById("chat-log");
  const history = [];
  function line(list, who, text) {
    const li = document.createElement("li");
    li.className = who;
    const b = document.createElement("b");
    b.textContent = who === "user" || who === "caller" ? "You: " : "Agent: ";
    li.append(b, document.createTextNode(text));
    list.appendChild(li);
    return li;
  }
  chatForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = chatForm.elements.message;
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    history.push({ role: "user", text });
    line(chatLog, "user", text);
    const response = await fetch(base + "/chat", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ history }),
    });
    const body = await response.json();
    const reply = body.reply || body.error || "";
    history.push({ role: "assistant", text: reply });
    line(chatLog, "agent", reply);
  });

  // --- mu-law ---------------------------------------------------------------------------
  function ulawEncode(sample) {
    const BIAS = 0x84, CLIP = 32635;
    let s = Math.max(-1, Math.min(1, sample)) * 32767;
    const sign = s < 0 ? 0x80 : 0;
    if (sign) s = -s;
    s = Math.min(CLIP, s) + BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (s >> (exponent + 3)) & 0x0f;
    return ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  const ULAW_TABLE = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    ULAW_TABLE[i] = ((u & 0x80) ? 0x84 - t : t - 0x84) / 32768;
  }
  function b64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }
  function unb64(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // --- voice call -----------------------------------------------------------------------
  const talk = document.getElementById("talk");
  const hangup = document.getElementById("hang-up");
  const state = document.getElementById("talk-state");
  const transcript = document.getElementById("talk-transcript");
  let call = null;

  async function start() {
    talk.disabled = true;
    state.textContent = "connecting…";
    const made = await fetch(base + "/talk", { method: "POST", headers: { "x-csrf-token": csrf } });
    if (!made.ok) { state.textContent = "could not start the test call"; talk.disabled = false; return; }
    const { call_sid: callSid, token, path } = await made.json();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext();
    await ctx.resume();
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
    const streamSid = "MZ" + callSid.slice(2);
    let seq = 0, chunk = 0;
    const send = (msg) => { if (ws.readyState === 1) ws.send(JSON.stringify(msg)); };
    call = { ws, ctx, stream, callSid, sources: new Set(), nextAt: 0, marks: [], timer: null };

    ws.onopen = () => {
      send({ event: "connected", protocol: "Call", version: "1.0.0" });
      send({
        event: "start", sequenceNumber: String(++seq), streamSid,
        start: {
          streamSid, callSid, accountSid: "browser", tracks: ["inbound"],
          customParameters: { token },
          mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
        },
      });
      state.textContent = "in call: speak now";
      hangup.disabled = false;
      // Capture: the microphone at the context's rate, averaged down to 8 kHz, 20 ms frames.
      const source = ctx.createMediaStreamSource(stream);
      const proc = ctx.createScriptProcessor(2048, 1, 1);
      const ratio = ctx.sampleRate / 8000;
      let acc = 0, accN = 0, pos = 0;
      const frame = new Uint8Array(160);
      let filled = 0;
      proc.onaudioprocess = (e) => {
        const input = e.inputBuffer.getChannelData(0);
        for (let i = 0; i < input.length; i++) {
          acc += input[i]; accN++; pos++;
          if (pos >= ratio) {
            pos -= ratio;
            frame[filled++] = ulawEncode(acc / accN);
            acc = 0; accN = 0;
            if (filled === 160) {
              filled = 0; chunk++;
              send({ event: "media", sequenceNumber: String(++seq), streamSid,
                media: { track: "inbound", chunk: String(chunk), timestamp: String(chunk * 20), payload: b64(frame) } });
            }
          }
        }
      };
      const mute = ctx.createGain();
      mute.gain.value = 0;
      source.connect(proc); proc.connect(mute); mute.connect(ctx.destination);
      call.proc = proc;
      call.timer = setInterval(() => poll(callSid), 700);
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.event === "media") play(unb64(msg.media.payload));
      else if (msg.event === "mark") {
        // Echo once everything queued before the mark has been heard.
        const wait = Math.max(0, (call.nextAt - ctx.currentTime) * 1000);
        const name = msg.mark.name;
        setTimeout(() => send({ event: "mark", sequenceNumber: String(++seq), streamSid, mark: { name } }), wait);
      } else if (msg.event === "clear") {
        for (const s of call.sources) { try { s.stop(); } catch (e) { /* already ended */ } }
        call.sources.clear();
        call.nextAt = ctx.currentTime;
      }
    };
    ws.onclose = () => finish("call ended");
  }

  function play(ulaw) {
    const { ctx } = call;
    const buffer = ctx.createBuffer(1, ulaw.length, 8000);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < ulaw.length; i++) data[i] = ULAW_TABLE[ulaw[i]];
    const node = ctx.createBufferSource();
    node.buffer = buffer;
    node.connect(ctx.destination);
    const at = Math.max(ctx.currentTime + 0.02, call.nextAt);
    node.start(at);
    call.nextAt = at + buffer.duration;
    call.sources.add(node);
    node.onended = () => call && call.sources.delete(node);
    root.dataset.agentAudio = String(Number(root.dataset.agentAudio || 0) + ulaw.length);
  }

  async function poll(callSid) {
    const r = await fetch("/calls/" + encodeURIComponent(callSid) + "/transcript.json");
    if (!r.ok) return;
    const doc = await r.json();
    transcript.replaceChildren();
    for (const t of doc.turns) line(transcript, t.role, t.text);
  }

  function finish(text) {
    if (!call) return;
    const c = call;
    call = null;
    clearInterval(c.timer);
    if (c.proc) c.proc.disconnect();
    c.stream.getTracks().forEach((t) => t.stop());
    if (c.ws.readyState <= 1) {
      c.ws.send(JSON.stringify({ event: "stop", streamSid: "MZ" + c.callSid.slice(2), stop: { callSid: c.callSid } }));
      c.ws.close();
    }
    setTimeout(() => { poll(c.callSid); c.ctx.close(); }, 800);
    state.textContent = text;
    talk.disabled = false;
    hangup.disabled = true;
  }

  talk.addEventListener("click", () => start().catch((e) => { state.textContent = "error: " + e; talk.disabled = false; }));
  hangup.addEventListener("click", () => finish("you hung up"));
})();
