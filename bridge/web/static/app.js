// riff-bridge live view: one WebSocket (/live) in, commands out. No external code.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { params: {}, specs: {}, live: {}, clips: [], ws: null, nextId: 1, pending: {},
                dragging: null, history: { gen: [], rtf: [], late: [], xruns: [] }, lastClips: -1,
                liveAt: performance.now(), images: new Map() };
const SLIDER_MAX = { seed_a: null, seed_b: null };  // seeds: number box only

function token() { return new URLSearchParams(location.search).get("token"); }

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const t = token();
  const ws = new WebSocket(`${scheme}://${location.host}/live${t ? "?token=" + encodeURIComponent(t) : ""}`);
  state.ws = ws;
  ws.onopen = () => { $("connection").textContent = "live"; $("connection").className = "on"; };
  ws.onclose = () => { $("connection").textContent = "disconnected, retrying…"; $("connection").className = "off";
                       setTimeout(connect, 1000); };
  ws.onmessage = (event) => handle(JSON.parse(event.data));
}

function send(command) {
  command.id = state.nextId++;
  state.pending[command.id] = command;
  if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(command));
  return command.id;
}

const handlers = {
  hello(m) {
    m.parameters.forEach((spec) => { state.specs[spec.name] = spec; });
    buildControls(m.parameters);
    Object.entries(m.state).forEach(([name, value]) => showParam(name, value));
    showPresets(m.presets); showBank(m.bank);
    state.clips = m.clips; m.clips.forEach(loadImage);
    m.errors.forEach(showError);
    if (m.live && Object.keys(m.live).length) handlers.live(m.live);
  },
  param(m) { showParam(m.name, m.value); },
  live(m) { showLive(m); },
  clip(m) { state.clips.push(m); if (state.clips.length > 24) state.clips.shift(); loadImage(m); },
  error(m) { showError(m); },
  bank(m) { showBank(m.bank); },
  presets(m) { showPresets(m.presets); },
  result(m) { showResult(m); },
};

function handle(message) { const h = handlers[message.type]; if (h) h(message); }

// -- controls -------------------------------------------------------------------------------

function buildControls(specs) {
  const box = $("params");
  box.innerHTML = "";
  specs.forEach((spec) => box.appendChild(controlFor(spec)));
}

function controlFor(spec) {
  const row = document.createElement("div");
  row.className = "param";
  row.innerHTML = `<label for="p-${spec.name}" title="${escapeHtml(spec.doc)}">${spec.name}</label>`;
  const main = document.createElement("div");
  main.className = "wide-input";
  const side = document.createElement("div");
  if (spec.kind === "float" || spec.kind === "int") numberControl(spec, main, side);
  else if (spec.kind === "bool") boolControl(spec, main);
  else if (spec.kind === "choice") choiceControl(spec, main);
  else textControl(spec, main);
  const error = document.createElement("div");
  error.className = "error"; error.id = `err-${spec.name}`;
  row.append(main, side, error);
  return row;
}

function numberControl(spec, main, side) {
  const box = document.createElement("input");
  box.type = "number"; box.id = `n-${spec.name}`; box.step = spec.kind === "int" ? "1" : "any";
  box.title = spec.allowed;
  box.addEventListener("change", () => setParam(spec.name, Number(box.value)));
  if (spec.name.startsWith("seed_")) {
    box.style.width = "120px";
    main.appendChild(box);
    const button = document.createElement("button");
    button.textContent = "new seed"; button.id = `new-${spec.name}`;
    button.addEventListener("click", () => send({ type: "seed_new", side: spec.name.slice(-1) }));
    side.appendChild(button);
    return;
  }
  const slider = document.createElement("input");
  slider.type = "range"; slider.id = `p-${spec.name}`; slider.min = spec.low; slider.max = spec.high;
  slider.step = spec.kind === "int" ? "1" : String((spec.high - spec.low) / 1000);
  let last = 0;
  const push = (force) => {
    const now = performance.now();
    if (force || now - last > 30) { last = now; setParam(spec.name, Number(slider.value)); }
  };
  slider.addEventListener("input", () => { state.dragging = spec.name; box.value = slider.value; push(false); });
  slider.addEventListener("change", () => { state.dragging = null; push(true); });
  main.appendChild(slider);
  side.appendChild(box);
}

function boolControl(spec, main) {
  const box = document.createElement("input");
  box.type = "checkbox"; box.id = `p-${spec.name}`;
  box.addEventListener("change", () => setParam(spec.name, box.checked));
  main.appendChild(box);
}

function choiceControl(spec, main) {
  const select = document.createElement("select");
  select.id = `p-${spec.name}`;
  spec.choices.forEach((c) => { const o = document.createElement("option"); o.value = o.textContent = c; select.appendChild(o); });
  select.addEventListener("change", () => setParam(spec.name, select.value));
  main.appendChild(select);
}

function textControl(spec, main) {
  const input = document.createElement("input");
  input.type = "text"; input.id = `p-${spec.name}`; input.placeholder = spec.doc;
  input.addEventListener("change", () => setParam(spec.name, input.value));
  main.appendChild(input);
}

function setParam(name, value) {
  send({ type: "set", name, value });
}

function showParam(name, value) {
  state.params[name] = value;
  const control = $(`p-${name}`), box = $(`n-${name}`);
  if (control && control.type === "checkbox") control.checked = !!value;
  else if (control && document.activeElement !== control && state.dragging !== name) control.value = value;
  else if (control && control.type === "range" && state.dragging !== name) control.value = value;
  if (box && document.activeElement !== box) box.value = value;
  if (control) control.dataset.value = String(value);
}

function showResult(m) {
  delete state.pending[m.id];
  const where = $(`err-${m.control}`) || $(`err-${(m.control || "").replace(/^seed$/, "seed_a")}`);
  if (where) where.textContent = m.ok ? "" : m.error;
  if (!m.ok && !where) showError({ time: Date.now() / 1000, source: "page", text: m.error });
}

function showPresets(names) {
  const list = $("preset-list");
  const keep = list.value;
  list.innerHTML = "";
  names.forEach((n) => { const o = document.createElement("option"); o.value = o.textContent = n; list.appendChild(o); });
  if (names.includes(keep)) list.value = keep;
}

function showBank(slots) {
  const bank = $("bank");
  bank.innerHTML = "";
  slots.forEach((slot, i) => {
    const cell = document.createElement("div");
    cell.className = "slot"; cell.title = slot.prompt;
    cell.innerHTML = `<button data-side="a">A</button><button data-side="b">B</button> ${i + 1} ${escapeHtml(slot.prompt)}`;
    cell.querySelectorAll("button").forEach((b) => b.addEventListener("click",
      () => send({ type: "bank_trigger", slot: i + 1, side: b.dataset.side })));
    bank.appendChild(cell);
  });
  if (!slots.length) bank.textContent = "(the loaded preset has no bank)";
}

$("preset-load").addEventListener("click", () => send({ type: "preset_load", name: $("preset-list").value }));
$("preset-save").addEventListener("click", () => send({ type: "preset_save", name: $("preset-name").value,
                                                        overwrite: $("preset-overwrite").checked }));

function showError(m) {
  const item = document.createElement("li");
  const when = new Date((m.time || Date.now() / 1000) * 1000).toLocaleTimeString();
  item.innerHTML = `<small>${when} ${escapeHtml(m.source || "")}</small> ${escapeHtml(m.text)}`;
  const list = $("errors");
  list.insertBefore(item, list.firstChild);
  while (list.children.length > 50) list.removeChild(list.lastChild);
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// -- live -----------------------------------------------------------------------------------

function showLive(m) {
  const previous = state.live;
  state.live = m; state.liveAt = performance.now();
  $("tempo").textContent = Number(m.bpm).toFixed(1);
  $("tempo-source").textContent = `${m.meter || ""} ${m.tempo_source || ""}`;
  $("barbeat").textContent = `${m.current_bar}:${(m.beat || 0) + 1}`;
  const bars = m.bars || 1, inLoop = (m.bar_in_loop || 0) + (m.beat || 0) / (m.beats_per_bar || 4);
  $("loop-progress").value = Math.min(1, inLoop / bars);
  $("loop-text").textContent = `bar ${(m.bar_in_loop || 0) + 1} of ${bars}`;
  $("m-gen").textContent = fixed(m.generation_seconds_last, 2);
  $("m-rtf").textContent = fixed(m.real_time_factor, 2);
  $("m-late").textContent = m.late_clips ?? "–";
  $("m-xruns").textContent = m.xruns ?? "–";
  $("m-clips").textContent = m.clips_generated ?? "–";
  $("m-failures").textContent = m.failures ?? "–";
  if (m.clips_generated !== undefined && m.clips_generated !== previous.clips_generated) {
    push("gen", m.generation_seconds_last); push("rtf", m.real_time_factor);
  }
}

function fixed(value, digits) { return value === undefined ? "–" : Number(value).toFixed(digits); }

function push(key, value) {
  const list = state.history[key];
  list.push(Number(value) || 0);
  if (list.length > 60) list.shift();
}

setInterval(() => {  // counters sampled once a second for their sparklines
  if (state.live.late_clips !== undefined) { push("late", state.live.late_clips); push("xruns", state.live.xruns); }
  ["gen", "rtf", "late", "xruns"].forEach((k) => sparkline($(`s-${k}`), state.history[k]));
}, 1000);

function sparkline(canvas, values) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  g.strokeStyle = "#f5a623"; g.lineWidth = 1.5; g.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (w - 2) + 1, y = h - 2 - ((v - lo) / span) * (h - 4);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

// -- spectrogram waterfall ------------------------------------------------------------------

const PALETTE = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]];

function colour(level) {  // level 0..1 -> inferno-like RGB
  const x = level * (PALETTE.length - 1), i = Math.min(PALETTE.length - 2, Math.floor(x)), f = x - i;
  return PALETTE[i].map((c, k) => c + (PALETTE[i + 1][k] - c) * f);
}

function loadImage(clip) {
  if (!clip.png || state.images.has(clip.serial)) return;
  const img = new Image();
  img.onload = () => state.images.set(clip.serial, tint(img));
  img.src = clip.png;
}

function tint(img) {  // dark = loud in the Riffusion image: invert and colour it
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, c.width, c.height);
  for (let p = 0; p < data.data.length; p += 4) {
    const [r, gg, b] = colour(1 - data.data[p] / 255);
    data.data[p] = r; data.data[p + 1] = gg; data.data[p + 2] = b;
  }
  g.putImageData(data, 0, 0);
  return c;
}

function playPosition() {  // in bars, extrapolated between live messages
  const m = state.live;
  if (m.current_bar === undefined) return 0;
  const beatSeconds = 60 / (m.bpm || 120);
  const since = m.rolling === false ? 0 : (performance.now() - state.liveAt) / 1000;
  const beats = m.beats_per_bar || 4;
  return m.current_bar + Math.min(beats - 0.01, (m.beat || 0) + since / beatSeconds) / beats;
}

function drawWaterfall() {
  const canvas = $("waterfall"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  const span = 16, now = playPosition(), left = now - span * 0.75, px = w / span;
  g.fillStyle = "#05060a"; g.fillRect(0, 0, w, h);
  g.strokeStyle = "#1d2230"; g.lineWidth = 1;
  for (let bar = Math.ceil(left); bar < left + span; bar++) {
    const x = (bar - left) * px; g.beginPath(); g.moveTo(x, 0); g.lineTo(x, h); g.stroke();
  }
  const clips = state.clips.filter((c) => state.images.has(c.serial) && c.bar !== undefined);
  let end = null;
  clips.forEach((clip, i) => {  // each clip loops from its bar until the next one starts
    const img = state.images.get(clip.serial), bars = clip.bars || 1;
    const last = i === clips.length - 1, until = last ? now : Math.min(clips[i + 1].bar, now);
    if (last) end = clip.bar + Math.max(1, Math.ceil((now - clip.bar) / bars)) * bars;
    for (let start = clip.bar; start < (last ? end : until); start += bars) {
      const played = Math.min(bars, until - start), x = (start - left) * px;
      if (x > w || x + bars * px < 0) continue;
      if (played > 0) g.drawImage(img, 0, 0, img.width * played / bars, img.height, x, 0, played * px, h);
      if (last && played < bars) {  // the rest of the loop now playing: still to come
        const from = Math.max(0, played);
        g.globalAlpha = 0.3;
        g.drawImage(img, img.width * from / bars, 0, img.width * (bars - from) / bars, img.height,
                    x + from * px, 0, (bars - from) * px, h);
        g.globalAlpha = 1;
      }
    }
  });
  drawGenerating(g, end, left, px, h);
  const head = (now - left) * px;
  g.strokeStyle = "#ffffff"; g.lineWidth = 2; g.beginPath(); g.moveTo(head, 0); g.lineTo(head, h); g.stroke();
  const last = state.clips[state.clips.length - 1];
  $("clip-caption").textContent = last ? `#${last.serial}: ${last.prompt_a || ""} → ${last.prompt_b || ""} (alpha ${fixed(last.alpha, 2)})` : "";
  requestAnimationFrame(drawWaterfall);
}

function drawGenerating(g, end, left, px, h) {  // the clip being made, after the one playing
  if (end === null) return;
  const bars = state.params.bars || 2, x = (end - left) * px, width = bars * px;
  g.fillStyle = "rgba(245,166,35,0.10)"; g.fillRect(x, 0, width, h);
  g.setLineDash([6, 4]); g.strokeStyle = "#f5a623"; g.strokeRect(x + 1, 1, width - 2, h - 2); g.setLineDash([]);
  g.fillStyle = "#f5a623"; g.font = "13px system-ui";
  g.fillText(`generating: ${state.params.prompt_a || ""} (alpha ${fixed(state.params.alpha, 2)})`, x + 8, 18);
}

connect();
requestAnimationFrame(drawWaterfall);
