// The console page: the session's status (pushed ~10 times a second), the command path's
// latency per stage as a live plot, the robot's cameras, and buttons that ask the session for
// what its keys do (teleop/web/protocol.py CONSOLE_ACTIONS). Escape (or e) is the e-stop.
// Plain JS, no framework, no build step, nothing loaded from elsewhere.
"use strict";

const teleopConsole = { state: "connecting", link: "connecting", statusCount: 0, status: null, sent: [],
                        cameraFrames: 0, cameraNames: [], ackCamera: false, socket: null };
window.teleopConsole = teleopConsole;  // read by the tests and handy in the browser's console

const $ = (id) => document.getElementById(id);
const STAGES = ["device", "pickup", "retarget", "safety", "send", "wire", "server", "total"];
const COLOURS = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#ffffff"];
const HISTORY = 600;  // 60 s at 10 status frames a second
const history = STAGES.map(() => []);

function send(obj) {
  const ws = teleopConsole.socket;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(obj));
  teleopConsole.sent.push(obj.action || obj.type);
  return true;
}

function act(action, text) {
  teleopConsole.lastActionAt = performance.timeOrigin + performance.now();  // epoch ms: the tests time from here
  const msg = { type: "action", action };
  if (text !== undefined) msg.text = text;
  if (!send(msg)) setLink("not connected: the action was not sent", true);
}

function setLink(text, down) {
  teleopConsole.link = text;
  $("link").textContent = text;
  $("link").className = down ? "link down" : "link";
}

function connect() {
  const ws = new WebSocket(`wss://${location.host}/console-ws`);  // the token cookie goes with it
  teleopConsole.socket = ws;
  ws.binaryType = "arraybuffer";
  ws.onopen = () => setLink("connected", false);
  ws.onmessage = (ev) => {
    if (ev.data instanceof ArrayBuffer) onCamera(ev.data);
    else onStatus(JSON.parse(ev.data));
  };
  ws.onclose = (ev) => {
    setLink(`disconnected (${ev.code}); reconnecting... (the robot does not depend on this page)`, true);
    setTimeout(connect, 1000);
  };
}

// -- status -------------------------------------------------------------------------------------
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function table(el, rows) {
  el.replaceChildren();
  for (const r of rows) {
    const tr = el.insertRow();
    r.forEach((v, i) => cell(tr, v === null || v === undefined ? "-" : String(v), i === r.length - 1 && r.bad ? "bad" : ""));
  }
}

function fmt(x, digits = 2) {
  return typeof x === "number" ? x.toFixed(digits) : "-";
}

function onStatus(s) {
  teleopConsole.status = s;
  teleopConsole.statusCount += 1;
  teleopConsole.state = s.state;
  const st = $("state");
  st.textContent = s.state;
  st.className = `state ${s.state}`;
  const fresh = s.fresh_fault ? ` (${s.fresh_fault.reason}: ${s.fresh_fault.message})` : "";
  $("reason").textContent = (s.reason || "") + fresh;
  const rec = s.recorder;
  $("recorder").textContent = !s.has_recorder ? "(no recorder in this session)" : !rec ? "" :
    rec.recording ? `recording #${rec.episode}` : "not recording";
  $("intervene").disabled = !s.has_policy;
  $("keys").textContent = (s.keys || []).concat(s.episode_keys || []).length ?
    "keys in the terminal: " + (s.keys || []).concat(s.episode_keys || []).join(", ") : "";
  const loopRows = [["loop", `${fmt(s.loop_hz, 1)} / ${fmt(s.rate_hz, 0)} Hz`],
                    ["deadline misses", s.deadline_misses], ["jitter p99", `${fmt(s.jitter_ms_p99, 3)} ms`],
                    ["robot", s.robot_mode]];
  if (s.loop_low) loopRows[0].bad = true;
  table($("loop"), loopRows);
  table($("inputs"), Object.entries(s.inputs || {}).map(([name, inp]) => {
    const row = [name, inp.device, `${fmt(inp.hz, 0)} Hz`, inp.age_ms === null ? "no sample" : `${fmt(inp.age_ms, 0)} ms old`];
    row.bad = !inp.fresh;
    return row;
  }));
  table($("faults"), Object.entries(s.faults || {}).map(([k, v]) => [k, v]));
  table($("counters"), Object.entries(s.counters || {}).map(([k, v]) => [k, v]));
  $("faultlog").textContent = (s.fault_log || []).slice().reverse().join("\n");
  const stages = s.stages_ms || {};
  STAGES.forEach((name, i) => {
    const p = stages[name] ? stages[name].p50 : null;
    history[i].push(typeof p === "number" ? p : null);
    if (history[i].length > HISTORY) history[i].shift();
  });
  drawPlot();
}

function drawPlot() {
  const c = $("plot"), g = c.getContext("2d"), w = c.width, h = c.height, pad = 30;
  g.fillStyle = "#000";
  g.fillRect(0, 0, w, h);
  let top = 0.5;
  for (const series of history) for (const v of series) if (v !== null && v > top) top = v;
  top *= 1.1;
  g.strokeStyle = "#333";
  g.fillStyle = "#888";
  g.font = "11px sans-serif";
  for (let k = 0; k <= 4; k++) {
    const y = h - pad + (-(h - 2 * pad) * k) / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(w, y); g.stroke();
    g.fillText((top * k / 4).toFixed(1), 2, y + 4);
  }
  history.forEach((series, i) => {
    g.strokeStyle = COLOURS[i];
    g.lineWidth = STAGES[i] === "total" ? 2 : 1;
    g.beginPath();
    let pen = false;
    series.forEach((v, j) => {
      if (v === null) { pen = false; return; }
      const x = pad + ((w - pad) * (j + HISTORY - series.length)) / HISTORY;
      const y = h - pad - ((h - 2 * pad) * v) / top;
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    });
    g.stroke();
  });
  g.fillStyle = "#888";
  g.fillText("-60 s", pad, h - 8);
  g.fillText("now", w - 24, h - 8);
}

function legend() {
  $("legend").replaceChildren(...STAGES.map((name, i) => {
    const span = document.createElement("span");
    span.textContent = `\u25A0 ${name}`;
    span.style.color = COLOURS[i];
    return span;
  }));
}

// -- cameras: header as teleop/web/camera.py HEADER (little-endian), then the name, then a JPEG --
const HEADER_BYTES = 22;
const decoding = {};  // a frame arriving while the camera's previous one decodes is dropped

function cameraCanvas(name) {
  let c = document.querySelector(`canvas[data-camera="${CSS.escape(name)}"]`);
  if (!c) {
    const h = document.createElement("h2");
    h.textContent = name;
    c = document.createElement("canvas");
    c.dataset.camera = name;
    $("cameras").append(h, c);
    teleopConsole.cameraNames.push(name);
  }
  return c;
}

function onCamera(buf) {
  if (buf.byteLength < HEADER_BYTES) return;
  const v = new DataView(buf);
  if (String.fromCharCode(v.getUint8(0), v.getUint8(1), v.getUint8(2), v.getUint8(3)) !== "TCAM") return;
  const nameLen = v.getUint8(5), w = v.getUint16(6, true), h = v.getUint16(8, true), index = v.getUint32(10, true);
  const name = new TextDecoder().decode(new Uint8Array(buf, HEADER_BYTES, nameLen));
  if (decoding[name]) return;
  decoding[name] = true;
  const jpeg = new Blob([new Uint8Array(buf, HEADER_BYTES + nameLen)], { type: "image/jpeg" });
  createImageBitmap(jpeg).then((bmp) => {
    const c = cameraCanvas(name);
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    c.getContext("2d").drawImage(bmp, 0, 0);
    bmp.close();
    teleopConsole.cameraFrames += 1;
    if (teleopConsole.ackCamera) send({ type: "camera_ack", name, index });
  }).catch(() => {}).finally(() => { decoding[name] = false; });
}

// -- buttons and keys ---------------------------------------------------------------------------
for (const b of document.querySelectorAll("button[data-action]")) {
  b.addEventListener("click", () => act(b.dataset.action));
}
for (const f of document.querySelectorAll("form[data-action]")) {
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = f.elements.text.value.trim();
    if (text) act(f.dataset.action, text);
    f.elements.text.value = "";
  });
}
document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement;
  if (ev.key === "Escape" || (ev.key === "e" && !typing)) {
    ev.preventDefault();
    act("estop");
  }
});

legend();
drawPlot();
connect();
