// The console's one script: live updates (server-sent events from /events) and keyboard triage.
// Pages work without it; it only adds. No inline script anywhere (the CSP allows 'self' only).
(function () {
  "use strict";
  const body = document.body;
  if (!body.dataset.operator) return; // error pages before sign-in
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const store = window.sessionStorage;
  const prefs = window.localStorage;

  // -- unread counter -------------------------------------------------------------------------------
  const badge = $("#unread");
  const baseTitle = document.title;
  function unread() { return parseInt(store.getItem("vigil-unread") || "0", 10); }
  function setUnread(count) {
    store.setItem("vigil-unread", String(count));
    if (badge) {
      badge.textContent = count ? `${count} new` : "";
      badge.hidden = !count;
    }
    document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
  }
  const onList = body.dataset.page === "alerts" && !new URLSearchParams(location.search).has("cursor");
  setUnread(onList && !document.hidden ? 0 : unread());
  document.addEventListener("visibilitychange", () => { if (!document.hidden && onList) setUnread(0); });

  // -- sound and browser notifications (off unless the operator turns them on) ---------------------
  function toggle(id, key, onEnable) {
    const box = $(id);
    if (!box) return;
    box.checked = prefs.getItem(key) === "on";
    box.addEventListener("change", () => {
      prefs.setItem(key, box.checked ? "on" : "off");
      if (box.checked && onEnable) onEnable(box);
    });
  }
  toggle("#sound", "vigil-sound");
  toggle("#notify", "vigil-notify", (box) => {
    if (!("Notification" in window)) { box.checked = false; return; }
    Notification.requestPermission().then((answer) => { if (answer !== "granted") box.checked = false; });
  });
  let audio = null;
  function beep() {
    if (prefs.getItem("vigil-sound") !== "on") return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.35);
    } catch (e) { /* no audio: the counter and banner still say it */ }
  }
  function notify(title, text, url) {
    if (prefs.getItem("vigil-notify") !== "on" || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    const note = new Notification(title, { body: text, tag: url });
    note.onclick = () => { window.focus(); location.href = url; };
  }

  // -- live events ----------------------------------------------------------------------------------
  const log = $("#live-log");
  function say(text, kind, url) {
    if (!log) return;
    const item = document.createElement("p");
    item.className = `live-item live-${kind}`;
    if (url) {
      const link = document.createElement("a");
      link.href = url;
      link.textContent = text;
      item.appendChild(link);
    } else {
      item.textContent = text;
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "dismiss";
    close.setAttribute("aria-label", "dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    log.prepend(item);
    while (log.children.length > 5) log.lastChild.remove();
  }
  function cell(row, label, content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    row.appendChild(td);
    return td;
  }
  function siteTime(alert) {
    // The server formats it in the site's time zone, as the list's own rows are.
    const time = document.createElement("time");
    time.className = "t";
    time.dateTime = alert.started_at;
    time.title = alert.started_title;
    time.textContent = `${alert.started_shown} `;
    const zone = document.createElement("span");
    zone.className = "tz";
    zone.textContent = alert.tz;
    time.appendChild(zone);
    return time;
  }
  function addAlertRow(alert) {
    const table = $("table.alerts tbody");
    if (!onList || !table || $(`tr[data-alert-id="${CSS.escape(alert.alert_id)}"]`)) return;
    const row = document.createElement("tr");
    row.className = "alert-row live-new";
    row.dataset.alertId = alert.alert_id;
    const link = document.createElement("a");
    link.href = `/alerts/${encodeURIComponent(alert.alert_id)}`;
    link.appendChild(siteTime(alert));
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.name = "pick";
    pick.value = `${alert.alert_id}|${alert.seen}`;
    pick.setAttribute("form", "bulk");
    cell(row, "", pick).className = "pick";
    const thumb = cell(row, "", "");
    thumb.className = "thumb";
    if (alert.thumb) {
      const image = document.createElement("img");
      image.src = alert.thumb;
      image.alt = "";
      image.width = 96;
      image.height = 54;
      thumb.appendChild(image);
    }
    cell(row, "Started", link).className = "when";
    const camera = document.createElement("span");
    camera.textContent = `${alert.camera_id} `;
    const site = document.createElement("span");
    site.className = "muted site";
    site.textContent = `@${alert.site}`;
    const where = document.createElement("span");
    where.append(camera, site);
    cell(row, "Camera", where);
    cell(row, "Event", alert.event_type);
    const sev = document.createElement("span");
    sev.className = `sev sev-${alert.severity}`;
    sev.textContent = alert.severity;
    cell(row, "Severity", sev);
    cell(row, "Score", `${alert.score.toFixed(3)} / ${alert.threshold.toFixed(3)}`).className = "num";
    const review = document.createElement("span");
    review.className = "muted";
    review.textContent = "not reviewed";
    cell(row, "Review", review).className = "review";
    table.prepend(row);
    const empty = $("p.empty");
    if (empty) empty.remove();
  }
  function cameraChanged(camera) {
    const row = $(`tr.camera-row[data-camera-id="${CSS.escape(camera.camera_id)}"]`);
    if (row) {
      const state = $(".state", row);
      if (state) {
        state.textContent = camera.state;
        state.className = `state state-${camera.state.replace(/ /g, "-")}`;
      }
    }
    if (camera.initial) return;
    const bad = camera.state !== "analysing";
    say(`Camera ${camera.camera_id} @${camera.site}: ${camera.was || "new"} → ${camera.state}`,
      bad ? "dark" : "ok", "/cameras");
    if (bad) {
      beep();
      notify(`Camera ${camera.camera_id}: ${camera.state}`, `@${camera.site}`, "/cameras");
    }
  }
  if (window.EventSource) {
    const since = encodeURIComponent(body.dataset.liveSince || "");
    const events = new EventSource(`/events?since=${since}`);
    events.addEventListener("open", () => body.classList.add("live-on"));
    events.addEventListener("error", () => body.classList.remove("live-on"));
    events.addEventListener("alert", (message) => {
      const alert = JSON.parse(message.data);
      addAlertRow(alert);
      if (!(onList && !document.hidden)) setUnread(unread() + 1);
      const url = `/alerts/${encodeURIComponent(alert.alert_id)}`;
      say(`New ${alert.severity} ${alert.event_type} on ${alert.camera_id} @${alert.site}`, "alert", url);
      beep();
      notify(`Vigil: ${alert.event_type} on ${alert.camera_id}`, `${alert.severity}, score ${alert.score}`, url);
    });
    events.addEventListener("camera", (message) => cameraChanged(JSON.parse(message.data)));
  }

  // -- keyboard triage ------------------------------------------------------------------------------
  const help = $("#help");
  function typing(event) {
    const target = event.target;
    return target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
  }
  let selected = -1;
  function select(index) {
    const rows = $$("tr.alert-row");
    if (!rows.length) return;
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("selected", i === selected));
    rows[selected].scrollIntoView({ block: "nearest" });
  }
  function go(selector) {
    const link = $(selector);
    if (link) location.href = link.href;
  }
  function review(label) {
    const form = $("form.review");
    if (!form) return;
    const then = document.createElement("input");
    then.type = "hidden";
    then.name = "then";
    then.value = "next";
    form.appendChild(then);
    const button = $(`button[value="${label}"]`, form);
    form.requestSubmit(button);
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const page = body.dataset.page;
    switch (event.key) {
      case "?":
        if (help) help.hidden = !help.hidden;
        break;
      case "Escape":
        if (help) help.hidden = true;
        break;
      case "j":
        if (page === "alerts") select(selected + 1); else go("a#older");
        break;
      case "k":
        if (page === "alerts") select(selected - 1); else go("a#newer");
        break;
      case "Enter":
      case "o":
        if (page === "alerts" && selected >= 0) go(`tr.alert-row.selected td.when a`);
        else return;
        break;
      case "x": {
        const box = $("tr.alert-row.selected td.pick input");
        if (page === "alerts" && box) box.checked = !box.checked; else return;
        break;
      }
      case "n":
        go("a#next-unreviewed");
        break;
      case "f":
        if (page === "alert") review("false_alarm"); else return;
        break;
      case "t":
        if (page === "alert") review("true_incident"); else return;
        break;
      default:
        return;
    }
    event.preventDefault();
  });
})();
