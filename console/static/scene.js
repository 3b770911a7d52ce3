// The scene page's editor: zones and privacy masks as polygons drawn over the camera's snapshot (SVG),
// and the arming schedule as a form. It keeps the page's "Scene JSON" text area up to date; the form
// posts that, and the server validates it (a refusal names the field). Without this script the text
// area is the editor. Plain JS, no build step; coordinates are fractions of the frame (0..1).
(function () {
  "use strict";
  const form = document.getElementById("scene-form");
  const textarea = document.getElementById("scene-json");
  const svg = document.getElementById("scene-svg");
  if (!form || !textarea || !svg) return;
  const editable = form.dataset.editable === "true";
  const NS = "http://www.w3.org/2000/svg";
  const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const $ = (id) => document.getElementById(id);

  let scene;              // the parsed scene; fields the editor does not show (tamper...) are kept as they are
  let shapes = [];        // {kind: "zone" | "mask", name, polygon: [[x, y]...], closed, ...zone fields}
  let selected = -1;
  let drawing = false;    // the selected shape is being drawn: clicks add points
  let width = 1600, height = 900;
  let faulty = new Set(); // shapes a refusal names ("zones.1.polygon: ..."), outlined in red until changed

  try {
    scene = JSON.parse(textarea.value);
  } catch (e) {
    return; // not JSON (an invalid stored item): the text area stays the editor
  }
  if (!scene || typeof scene !== "object") return;
  (scene.zones || []).forEach((zone) => shapes.push(Object.assign({ kind: "zone", closed: true }, zone)));
  (scene.privacy_masks || []).forEach((mask) => shapes.push(Object.assign({ kind: "mask", closed: true }, mask)));
  $("scene-editor").hidden = false;
  $("scene-json-box").open = false;

  // -- the model -> the JSON the form posts ---------------------------------------------------------
  function round(value) { return Math.round(value * 10000) / 10000; }
  function zoneOf(shape) {
    return {
      name: shape.name, polygon: shape.polygon, event_type: shape.event_type || "intrusion",
      severity: shape.severity || null, dwell_s: Number(shape.dwell_s) || 0,
      when_disarmed: shape.when_disarmed || "count",
    };
  }
  function save() {
    scene.zones = shapes.filter((s) => s.kind === "zone").map(zoneOf);
    scene.privacy_masks = shapes.filter((s) => s.kind === "mask").map((s) => ({ name: s.name, polygon: s.polygon }));
    scene.outside_zones = $("outside-zones").value;
    scene.schedule = readSchedule();
    textarea.value = JSON.stringify(scene, null, 2);
  }

  // -- drawing ------------------------------------------------------------------------------------------
  function node(name, attributes, parent) {
    const element = document.createElementNS(NS, name);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, String(value)));
    if (parent) parent.appendChild(element);
    return element;
  }
  function toFrame(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const local = point.matrixTransform(svg.getScreenCTM().inverse());
    return [round(Math.min(1, Math.max(0, local.x / width))), round(Math.min(1, Math.max(0, local.y / height)))];
  }
  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const handle = width / 110;
    shapes.forEach((shape, index) => {
      const points = shape.polygon.map(([x, y]) => `${x * width},${y * height}`).join(" ");
      const classes = `shape shape-${shape.kind}${index === selected ? " selected" : ""}${faulty.has(shape) ? " faulty" : ""}`;
      const open = !shape.closed || shape.polygon.length < 3;
      const outline = node(open ? "polyline" : "polygon", { points, class: classes, "data-index": index }, svg);
      outline.addEventListener("pointerdown", (event) => {
        if (drawing) return; // a click while drawing adds a point (the svg's own handler)
        event.stopPropagation();
        select(index);
      });
      if (shape.polygon.length) {
        const [x, y] = shape.polygon[0];
        const label = node("text", { x: x * width + handle * 1.6, y: y * height - handle * 1.2, class: `shape-label shape-label-${shape.kind}`,
          "font-size": width / 38 }, svg);
        label.textContent = shape.kind === "mask" ? `${shape.name} (mask)` : shape.name;
      }
    });
    const shape = shapes[selected];
    if (!shape || !editable) return;
    shape.polygon.forEach(([x, y], point) => {
      const dot = node("circle", { cx: x * width, cy: y * height, r: point === 0 && drawing ? handle * 1.5 : handle,
        class: `handle${point === 0 && drawing ? " first" : ""}`, "data-point": point }, svg);
      dot.addEventListener("pointerdown", (event) => grab(event, point));
    });
  }
  function grab(event, point) {
    event.stopPropagation();
    event.preventDefault();
    if (drawing && point === 0 && shapes[selected].polygon.length >= 2) { finish(); return; }
    const target = event.target;
    target.setPointerCapture(event.pointerId);
    const move = (moved) => {
      faulty.delete(shapes[selected]);
      shapes[selected].polygon[point] = toFrame(moved);
      target.setAttribute("cx", shapes[selected].polygon[point][0] * width);
      target.setAttribute("cy", shapes[selected].polygon[point][1] * height);
    };
    const drop = () => {
      target.removeEventListener("pointermove", move);
      target.removeEventListener("pointerup", drop);
      save();
      draw();
    };
    target.addEventListener("pointermove", move);
    target.addEventListener("pointerup", drop);
  }
  if (editable) {
    svg.addEventListener("pointerdown", (event) => {
      if (!drawing || event.button !== 0) return;
      event.preventDefault();
      shapes[selected].polygon.push(toFrame(event));
      save();
      draw();
      tools();
    });
  }
  function finish() {
    drawing = false;
    if (shapes[selected]) shapes[selected].closed = true;
    save();
    draw();
    tools();
  }
  function start(kind) {
    if (drawing) finish();
    const taken = new Set(shapes.map((s) => s.name));
    let n = 1;
    while (taken.has(`${kind}-${n}`)) n += 1;
    shapes.push(kind === "zone"
      ? { kind, name: `zone-${n}`, polygon: [], closed: false, event_type: "intrusion", severity: null, dwell_s: 0, when_disarmed: "count" }
      : { kind, name: `mask-${n}`, polygon: [], closed: false });
    selected = shapes.length - 1;
    drawing = true;
    list();
    draw();
    tools();
  }

  // -- the shape list and the selected shape's fields ---------------------------------------------------
  function list() {
    const items = $("shape-list");
    items.textContent = "";
    shapes.forEach((shape, index) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = `shape-pick shape-pick-${shape.kind}${index === selected ? " selected" : ""}${faulty.has(shape) ? " faulty" : ""}`;
      button.textContent = `${shape.name} · ${shape.kind === "zone" ? shape.event_type || "intrusion" : "privacy mask"} · ${shape.polygon.length} points`;
      button.addEventListener("click", () => select(index));
      item.appendChild(button);
      items.appendChild(item);
    });
    if (!shapes.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "No zone and no mask: anomalies anywhere raise scene anomaly.";
      items.appendChild(item);
    }
    props();
  }
  function select(index) {
    if (drawing && index !== selected) finish();
    selected = index;
    list();
    draw();
    tools();
  }
  function props() {
    const shape = shapes[selected];
    const fields = $("shape-props");
    fields.disabled = !shape || !editable;
    fields.hidden = !shape;
    fields.classList.toggle("is-mask", Boolean(shape) && shape.kind === "mask");
    $("shape-name").value = shape ? shape.name : "";
    $("shape-kind").value = shape ? shape.kind : "zone";
    $("shape-event").value = shape && shape.event_type ? shape.event_type : "intrusion";
    $("shape-severity").value = shape && shape.severity ? shape.severity : "";
    $("shape-dwell").value = shape && shape.dwell_s !== undefined ? shape.dwell_s : 0;
    $("shape-disarmed").value = shape && shape.when_disarmed ? shape.when_disarmed : "count";
  }
  function bind(id, apply) {
    $(id).addEventListener("input", () => {
      const shape = shapes[selected];
      if (!shape) return;
      faulty.delete(shape);
      apply(shape, $(id).value);
      save();
      list();
      draw();
    });
  }
  bind("shape-name", (shape, value) => { shape.name = value; });
  bind("shape-kind", (shape, value) => { shape.kind = value; });
  bind("shape-event", (shape, value) => { shape.event_type = value; });
  bind("shape-severity", (shape, value) => { shape.severity = value || null; });
  bind("shape-dwell", (shape, value) => { shape.dwell_s = value === "" ? 0 : Number(value); });
  bind("shape-disarmed", (shape, value) => { shape.when_disarmed = value; });
  function tools() {
    if (!editable) return;
    const shape = shapes[selected];
    $("close-shape").disabled = !drawing || !shape || shape.polygon.length < 2;
    $("undo-point").disabled = !drawing || !shape || !shape.polygon.length;
    $("delete-shape").disabled = !shape;
    $("scene-frame").classList.toggle("drawing", drawing);
  }
  if (editable) {
    $("new-zone").addEventListener("click", () => start("zone"));
    $("new-mask").addEventListener("click", () => start("mask"));
    $("close-shape").addEventListener("click", finish);
    $("undo-point").addEventListener("click", () => {
      if (shapes[selected]) shapes[selected].polygon.pop();
      save();
      draw();
      tools();
    });
    $("delete-shape").addEventListener("click", () => {
      if (selected < 0) return;
      shapes.splice(selected, 1);
      selected = -1;
      drawing = false;
      save();
      list();
      draw();
      tools();
    });
  }

  // -- the schedule ------------------------------------------------------------------------------------
  function cell(row, child) {
    const td = document.createElement("td");
    if (child) td.appendChild(child);
    row.appendChild(td);
    return td;
  }
  function input(type, value, label) {
    const element = document.createElement("input");
    element.type = type;
    element.value = value;
    element.setAttribute("aria-label", label);
    element.disabled = !editable;
    element.addEventListener("input", save);
    element.addEventListener("change", save);
    return element;
  }
  function labelled(text, control) {
    const label = document.createElement("label");
    label.className = "inline-field";
    label.append(text, control);
    return label;
  }
  function remover(row) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Remove";
    button.disabled = !editable;
    button.addEventListener("click", () => { row.remove(); save(); });
    return button;
  }
  function addWindow(window) {
    const row = document.createElement("tr");
    row.className = "window";
    const days = document.createElement("span");
    days.className = "days";
    WEEKDAYS.forEach((day) => {
      const label = document.createElement("label");
      const box = input("checkbox", day, day);
      box.checked = (window.days || []).includes(day);
      label.append(box, day);
      days.appendChild(label);
    });
    cell(row, days);
    cell(row, labelled("from", input("time", window.start || "22:00", "from")));
    cell(row, labelled("to", input("time", window.end || "06:00", "to")));
    cell(row, remover(row));
    $("windows").appendChild(row);
  }
  function addException(exception) {
    const row = document.createElement("tr");
    row.className = "exception";
    cell(row, labelled("on", input("date", exception.date || new Date().toISOString().slice(0, 10), "date")));
    const armed = document.createElement("select");
    armed.disabled = !editable;
    [["true", "armed all day"], ["false", "disarmed all day"]].forEach(([value, text]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      armed.appendChild(option);
    });
    armed.value = exception.armed === false ? "false" : "true";
    armed.addEventListener("change", save);
    cell(row, armed);
    cell(row, remover(row));
    $("exceptions").appendChild(row);
  }
  function readSchedule() {
    if ($("always-armed").checked) return null;
    return {
      timezone: $("schedule-tz").value.trim(),
      windows: Array.from(document.querySelectorAll("#windows tr.window")).map((row) => {
        const [from, to] = row.querySelectorAll("input[type=time]");
        return {
          days: Array.from(row.querySelectorAll("input[type=checkbox]")).filter((b) => b.checked).map((b) => b.value),
          start: from.value, end: to.value,
        };
      }),
      exceptions: Array.from(document.querySelectorAll("#exceptions tr.exception")).map((row) => ({
        date: row.querySelector("input[type=date]").value, armed: row.querySelector("select").value === "true",
      })),
    };
  }
  function showSchedule() {
    const schedule = scene.schedule;
    $("always-armed").checked = !schedule;
    $("schedule").classList.toggle("always", !schedule);
    $("schedule-tz").value = schedule ? schedule.timezone : (form.dataset.siteTimezone || "");
    (schedule ? schedule.windows || [] : []).forEach(addWindow);
    (schedule ? schedule.exceptions || [] : []).forEach(addException);
  }
  $("always-armed").addEventListener("change", () => {
    $("schedule").classList.toggle("always", $("always-armed").checked);
    save();
  });
  $("schedule-tz").addEventListener("input", save);
  $("add-window").addEventListener("click", () => { addWindow({ days: ["mon", "tue", "wed", "thu", "fri"] }); save(); });
  $("add-exception").addEventListener("click", () => { addException({}); save(); });
  $("outside-zones").value = scene.outside_zones || "scene_anomaly";
  $("outside-zones").addEventListener("change", save);
  if (typeof Intl.supportedValuesOf === "function") {
    const zones = $("timezones");
    Intl.supportedValuesOf("timeZone").forEach((zone) => {
      const option = document.createElement("option");
      option.value = zone;
      zones.appendChild(option);
    });
  }
  ["always-armed", "schedule-tz", "add-window", "add-exception", "outside-zones"].forEach((id) => {
    if (!editable) $(id).disabled = true;
  });

  // -- the JSON, edited by hand: the editor follows when it parses --------------------------------------
  textarea.addEventListener("change", () => {
    try {
      const parsed = JSON.parse(textarea.value);
      scene = parsed;
      shapes = [];
      (scene.zones || []).forEach((zone) => shapes.push(Object.assign({ kind: "zone", closed: true }, zone)));
      (scene.privacy_masks || []).forEach((mask) => shapes.push(Object.assign({ kind: "mask", closed: true }, mask)));
      selected = -1;
      drawing = false;
      $("windows").textContent = "";
      $("exceptions").textContent = "";
      showSchedule();
      $("outside-zones").value = scene.outside_zones || "scene_anomaly";
      list();
      draw();
      tools();
    } catch (e) { /* not JSON yet: the server will say what is wrong */ }
  });

  // -- the picture's own size, once it is loaded ---------------------------------------------------------
  function fit(w, h) {
    width = w;
    height = h;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    draw();
  }
  const still = $("scene-still");
  if (still) {
    if (still.complete && still.naturalWidth) fit(still.naturalWidth, still.naturalHeight);
    still.addEventListener("load", () => fit(still.naturalWidth, still.naturalHeight));
  }
  form.addEventListener("submit", () => { if (drawing) finish(); else save(); });

  // -- a refusal names fields: outline the shapes it names, and select the first ---------------------------
  document.querySelectorAll("#scene-errors li, #scene-stored-invalid li").forEach((line) => {
    const found = /^(zones|privacy_masks)\.(\d+)/.exec(line.textContent.trim());
    if (!found) return;
    const kind = found[1] === "zones" ? "zone" : "mask";
    const shape = shapes.filter((s) => s.kind === kind)[Number(found[2])];
    if (shape) faulty.add(shape);
  });
  if (faulty.size) selected = shapes.indexOf(faulty.values().next().value);

  showSchedule();
  list();
  draw();
  tools();
  if (editable) save();
})();
