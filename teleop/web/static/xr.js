// The XR page: streams both hands' 25 joints, wrist poses, the head pose and the XR frame time
// over the secure WebSocket, once per XR frame (teleop/web/protocol.py is the format).
// Plain JS, no framework, no build step, nothing loaded from elsewhere.
"use strict";

const teleopXR = { state: "connecting", framesSent: 0, lastBytes: 0, socket: null, session: null,
                   cameraFrames: 0, cameraSize: null, cameraNames: [], cameras: [],
                   xrCameraDraws: 0 };
window.teleopXR = teleopXR;  // read by the tests and handy in a remote console

const SIDES = ["left", "right"];
const MAX_BUFFERED = 32 * 1024;  // a slow network drops frames here instead of queueing old poses
const BUTTONS = { 0: "trigger", 1: "squeeze", 3: "thumbstick" };  // xr-standard gamepad mapping
const FACE = { left: { 4: "x", 5: "y" }, right: { 4: "a", 5: "b" } };

const statusEl = document.getElementById("status");
const enterEl = document.getElementById("enter");

function show(text) {
  teleopXR.state = text;
  statusEl.textContent = text;
}

function send(obj) {
  const ws = teleopXR.socket;
  if (!ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return false;
  const text = JSON.stringify(obj);
  ws.send(text);
  teleopXR.lastBytes = text.length;
  return true;
}

function connect() {
  const ws = new WebSocket(`wss://${location.host}/ws`);  // the token cookie goes with it
  teleopXR.socket = ws;
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => { if (ev.data instanceof ArrayBuffer) onCamera(ev.data); };
  ws.onopen = () => show(teleopXR.session ? "streaming" : "connected: press Enter XR");
  ws.onclose = (ev) => {
    show(`disconnected (${ev.code}): the robot holds; reconnecting...`);
    if (ev.code !== 4001) setTimeout(connect, 1000);  // 4001: another page took over
  };
}

// The robot's camera: binary messages, header as teleop/web/camera.py HEADER (little-endian)
// then the camera name then a JPEG. One camera fills the view; two are the left and right eye.
const camEl = document.getElementById("cam");
const camCtx = camEl.getContext("2d");
const HEADER_BYTES = 22;  // "TCAM", version u8, name length u8, width u16, height u16, index u32, capture_ns i64
let camDecoding = false;  // a frame arriving while the previous one decodes is dropped: newest wins

function onCamera(buf) {
  if (buf.byteLength < HEADER_BYTES || camDecoding) return;
  const v = new DataView(buf);
  if (String.fromCharCode(v.getUint8(0), v.getUint8(1), v.getUint8(2), v.getUint8(3)) !== "TCAM") return;
  const nameLen = v.getUint8(5), w = v.getUint16(6, true), h = v.getUint16(8, true);
  const name = new TextDecoder().decode(new Uint8Array(buf, HEADER_BYTES, nameLen));
  if (!teleopXR.cameraNames.includes(name)) teleopXR.cameraNames.push(name);
  const eye = teleopXR.cameraNames.indexOf(name), eyes = Math.min(2, teleopXR.cameraNames.length);
  camDecoding = true;
  createImageBitmap(new Blob([new Uint8Array(buf, HEADER_BYTES + nameLen)], { type: "image/jpeg" })).then((bmp) => {
    if (camEl.width !== w * eyes || camEl.height !== h) { camEl.width = w * eyes; camEl.height = h; }
    camCtx.drawImage(bmp, eye * w, 0);
    if (teleopXR.cameras[eye]) teleopXR.cameras[eye].close();
    teleopXR.cameras[eye] = bmp;  // the XR view draws the newest one
    teleopXR.cameraFrames += 1;
    teleopXR.cameraSize = [bmp.width, bmp.height];
  }).catch(() => { teleopXR.cameraErrors = (teleopXR.cameraErrors || 0) + 1; })
    .finally(() => { camDecoding = false; });
}

// 10 um / 1e-5 steps: far below tracking noise, and the JSON half the size of full doubles
const r5 = (v) => Math.round(v * 1e5) / 1e5;

function pose7(p) {
  const t = p.transform;
  return [t.position.x, t.position.y, t.position.z,
          t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w].map(r5);
}

function handMessage(frame, hand, ref) {
  const joints = [];
  let wrist = null;
  for (const space of hand.values()) {  // XRHand iterates in the spec's joint order
    const p = frame.getJointPose(space, ref);
    if (!p) return null;  // not tracked this frame: send nothing rather than a partial hand
    if (!wrist) wrist = pose7(p);
    joints.push(r5(p.transform.position.x), r5(p.transform.position.y), r5(p.transform.position.z));
  }
  return joints.length === 75 ? { joints, wrist } : null;
}

function controllerMessage(frame, source, ref) {
  const p = source.gripSpace && frame.getPose(source.gripSpace, ref);
  const pad = source.gamepad;
  if (!p || !pad) return null;
  const names = Object.assign({}, BUTTONS, FACE[source.handedness]);
  const buttons = [];
  pad.buttons.forEach((b, i) => { if (b.pressed && names[i]) buttons.push(names[i]); });
  const value = (i) => (pad.buttons[i] ? Math.min(1, Math.max(0, pad.buttons[i].value)) : 0);
  return { grip: pose7(p), trigger: value(0), squeeze: value(1), buttons };
}

function onFrame(t, frame) {
  const session = frame.session;
  session.requestAnimationFrame(onFrame);
  const ref = teleopXR.ref;
  const hands = {}, controllers = {};
  for (const source of session.inputSources) {
    if (!SIDES.includes(source.handedness)) continue;
    const msg = source.hand ? handMessage(frame, source.hand, ref) : controllerMessage(frame, source, ref);
    if (msg) (source.hand ? hands : controllers)[source.handedness] = msg;
  }
  const viewer = frame.getViewerPose(ref);
  const sent = send({ type: "frame", seq: teleopXR.framesSent, t_ms: t, hands, controllers,
                      head: viewer ? pose7(viewer) : null });
  if (sent) teleopXR.framesSent += 1;
  const gl = teleopXR.gl;
  gl.bindFramebuffer(gl.FRAMEBUFFER, session.renderState.baseLayer.framebuffer);
  gl.clearColor(0.05, 0.05, 0.08, 1);
  gl.clear(gl.COLOR_BUFFER_BIT);
  if (viewer) drawCamera(gl, session.renderState.baseLayer, viewer);
}

// The camera in the headset: a head-locked screen in the middle of each eye's view (left camera
// to the left eye when there are two), copied with blitFramebuffer (WebGL2; WebGL1: no view).
const cam = { tex: null, fbo: null, uploaded: [null, null] };

function drawCamera(gl, layer, viewer) {
  if (!teleopXR.cameras.length || !gl.blitFramebuffer) return;
  if (!cam.fbo) { cam.tex = [gl.createTexture(), gl.createTexture()]; cam.fbo = gl.createFramebuffer(); }
  viewer.views.forEach((view, i) => {
    const eye = Math.min(i, teleopXR.cameras.length - 1), bmp = teleopXR.cameras[eye];
    if (!bmp) return;
    gl.bindTexture(gl.TEXTURE_2D, cam.tex[eye]);
    if (cam.uploaded[eye] !== bmp) {
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, bmp);
      cam.uploaded[eye] = bmp;
    }
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, cam.fbo);
    gl.framebufferTexture2D(gl.READ_FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, cam.tex[eye], 0);
    gl.bindFramebuffer(gl.DRAW_FRAMEBUFFER, layer.framebuffer);
    const vp = layer.getViewport(view), w = vp.width * 0.6, h = w * bmp.height / bmp.width;
    const x = vp.x + (vp.width - w) / 2, y = vp.y + (vp.height - h) / 2;
    // the image's first row is the texture's row 0 (GL's bottom): the destination's y runs top-down
    gl.blitFramebuffer(0, 0, bmp.width, bmp.height, x, y + h, x + w, y, gl.COLOR_BUFFER_BIT, gl.LINEAR);
  });
  teleopXR.xrCameraDraws += 1;
}

async function enterXR() {
  const mode = (await navigator.xr.isSessionSupported("immersive-vr")) ? "immersive-vr" : "immersive-ar";
  const session = await navigator.xr.requestSession(mode, {
    requiredFeatures: ["local-floor"], optionalFeatures: ["hand-tracking"] });
  const canvas = document.getElementById("gl");
  const gl = canvas.getContext("webgl2", { xrCompatible: true }) || canvas.getContext("webgl", { xrCompatible: true });
  session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
  teleopXR.ref = await session.requestReferenceSpace("local-floor");
  teleopXR.gl = gl;
  teleopXR.session = session;
  session.onvisibilitychange = () => send({ type: "visibility", state: session.visibilityState });
  session.onend = () => {
    teleopXR.session = null;
    send({ type: "visibility", state: "hidden" });
    show("XR ended: the robot holds");
  };
  send({ type: "visibility", state: "visible" });
  show("streaming");
  session.requestAnimationFrame(onFrame);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") send({ type: "visibility", state: "hidden" });
});

async function init() {
  connect();
  if (!navigator.xr) {
    show("this browser has no WebXR (open the page in the headset's browser, over https)");
    return;
  }
  enterEl.disabled = false;
  enterEl.onclick = () => enterXR().catch((e) => show(`could not enter XR: ${e.message || e}`));
}

init();
