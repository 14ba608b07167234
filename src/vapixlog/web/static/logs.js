// The device's log page. Plain JavaScript, no dependencies, no build step.
// Log text only ever reaches the page through textContent (never innerHTML).
"use strict";

(() => {
  // The Log API's root and methods follow the device's firmware (status.log_api):
  // 12.x: v1 with PATCH and POST; 11.x: v1alpha with PUT; 10.x: none.
  const DEFAULT_API = { root: "/config/rest/log/v1", put_only: false };
  const MAX_ROWS = 2000; // rows kept in the DOM
  const MAX_BUFFER = 5000; // entries kept in memory (what filters choose from)
  const STATUS_EVERY = 5000; // ms between status refreshes
  const LABELS = { EMERG: 0, ALERT: 1, CRIT: 2, ERR: 3, WARNING: 4, NOTICE: 5, INFO: 6, DEBUG: 7 };
  // time host [ LABEL ] tag[pid]: message  (the device's line format)
  const LINE = /^(\S+) \S+ \[ ([A-Z]+) +\] (.*)$/s;
  // The UTC offset at the end of the device's ISO 8601 times ("Z" is +00:00).
  const ZONE = /(?:Z|([+-]\d\d):?(\d\d))$/;
  const LONG_LINE = 480; // characters: longer entries are clamped to a few lines until opened
  const AUDIT_TAIL = 20; // audit entries shown to admins

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const state = {
    status: null,
    admin: false,
    buffer: [], // parsed entries, oldest first
    pending: [], // arrived, not yet rendered
    frame: 0,
    source: null,
    retry: 1000,
    retryTimer: 0,
    threshold: 7,
    text: "",
    switchBusy: false,
    rsFilled: false,
    bootId: "", // the boot whose lines the view shows last
    zone: "",
    audit: true, // false once auditlog.cgi answered 404 (AXIS OS before 12.5)
  };
  const rowEntries = new WeakMap(); // row element -> its entry (to open a clamped line)

  // ----- entries and rows ------------------------------------------------------------

  function parse(line) {
    const m = LINE.exec(line);
    if (!m || !(m[2] in LABELS)) return { sev: 6, time: "", label: "", rest: line, line };
    return { sev: LABELS[m[2]], time: m[1], label: m[2], rest: m[3], line };
  }

  function marker(text) {
    return { marker: true, sev: -1, line: text };
  }

  function zoneOf(time) {
    const m = ZONE.exec(time);
    if (!m) return "";
    return m[1] ? `UTC${m[1]}:${m[2]}` : "UTC+00:00";
  }

  // "2026-11-29 21:35:16.123 UTC+01:00" from the device's ISO 8601 time.
  function fullTime(time) {
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(time)) return time;
    const zone = zoneOf(time);
    const clock = time.slice(11).replace(ZONE, "");
    return `${time.slice(0, 10)} ${clock}${zone ? " " + zone : ""}`;
  }

  function setZone(zone) {
    if (!zone || zone === state.zone) return;
    state.zone = zone;
    $("tz-note").textContent = `Times are the device's (${zone})`;
    $("tz-note").title = `The device's clock, ${zone}; point at a time for its date and zone`;
  }

  function timeElement(time, className) {
    const element = document.createElement("time");
    element.className = className;
    element.dateTime = time;
    element.title = fullTime(time);
    element.textContent = time.slice(11, 23) || time;
    return element;
  }

  // The text as text nodes, with each match of the text filter in a <mark> (made here,
  // never parsed from markup).
  function appendMarked(parent, text) {
    const needle = state.text;
    const lower = needle ? text.toLowerCase() : "";
    if (!needle || lower.length !== text.length) {
      parent.append(text);
      return;
    }
    let from = 0;
    for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, from)) {
      if (at > from) parent.append(text.slice(from, at));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(at, at + needle.length);
      parent.append(mark);
      from = at + needle.length;
    }
    if (from < text.length) parent.append(text.slice(from));
  }

  function moreLabel(entry) {
    return entry.open ? "Show less" : `Show all ${entry.line.length} characters`;
  }

  function toggleRow(div) {
    const entry = rowEntries.get(div);
    if (!entry) return;
    entry.open = !entry.open;
    div.classList.toggle("open", entry.open);
    const button = div.querySelector(".more");
    button.setAttribute("aria-expanded", String(entry.open));
    button.textContent = moreLabel(entry);
  }

  function matches(entry) {
    if (entry.marker) return true;
    if (entry.sev > state.threshold) return false;
    if (!state.text) return true;
    if (entry.lower === undefined) entry.lower = entry.line.toLowerCase();
    return entry.lower.includes(state.text);
  }

  function row(entry) {
    const div = document.createElement("div");
    if (entry.marker) {
      div.className = entry.boot ? "row marker boot" : "row marker";
      div.textContent = entry.line;
      if (entry.title) div.title = entry.title;
      if (entry.boot) div.setAttribute("role", "separator");
      if (entry.boot) div.setAttribute("aria-label", entry.line);
      return div;
    }
    div.className = "row s" + entry.sev;
    const long = entry.line.length > LONG_LINE;
    // A long entry's text goes in a box clamped to a few lines, with a button to open it.
    const box = long ? document.createElement("div") : div;
    if (!entry.label) {
      appendMarked(box, entry.line);
    } else {
      const badge = document.createElement("span");
      badge.className = "b";
      badge.textContent = entry.label;
      const text = document.createElement("span");
      text.className = "m";
      appendMarked(text, entry.rest);
      box.append(timeElement(entry.time, "t"), badge, text);
    }
    if (long) {
      div.classList.add("long");
      if (entry.open) div.classList.add("open");
      box.className = "clip";
      const more = document.createElement("button");
      more.type = "button";
      more.className = "more";
      more.setAttribute("aria-expanded", String(Boolean(entry.open)));
      more.textContent = moreLabel(entry);
      div.append(box, more);
      rowEntries.set(div, entry);
    }
    return div;
  }

  // ----- rendering, in batches, once per animation frame ------------------------------

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(flush);
  }

  function enqueue(entries) {
    for (const entry of entries) state.pending.push(entry);
    // A hidden tab gets no animation frames: keep only what could still be shown.
    if (state.pending.length > 2 * MAX_BUFFER) {
      state.pending.splice(0, state.pending.length - MAX_BUFFER);
    }
    schedule();
  }

  function flush() {
    state.frame = 0;
    const batch = state.pending;
    if (!batch.length) return;
    state.pending = [];
    const stick = atBottom();
    state.buffer = state.buffer.concat(batch);
    if (state.buffer.length > MAX_BUFFER) {
      state.buffer.splice(0, state.buffer.length - MAX_BUFFER);
    }
    const newest = batch[batch.length - 1];
    if (newest.time) setZone(zoneOf(newest.time));
    let shown = batch.filter(matches);
    if (shown.length >= MAX_ROWS) {
      shown = shown.slice(-MAX_ROWS);
      log.replaceChildren();
    }
    const fragment = document.createDocumentFragment();
    for (const entry of shown) fragment.append(row(entry));
    log.append(fragment);
    trim();
    if (stick) log.scrollTop = log.scrollHeight;
    updateCounts();
    updateJump();
  }

  function trim() {
    const excess = log.childElementCount - MAX_ROWS;
    if (excess <= 0) return;
    const range = document.createRange();
    range.setStartBefore(log.firstElementChild);
    range.setEndBefore(log.children[excess]);
    range.deleteContents();
  }

  function rebuild() {
    const shown = [];
    for (let i = state.buffer.length - 1; i >= 0 && shown.length < MAX_ROWS; i--) {
      if (matches(state.buffer[i])) shown.push(state.buffer[i]);
    }
    shown.reverse();
    const fragment = document.createDocumentFragment();
    for (const entry of shown) fragment.append(row(entry));
    log.replaceChildren(fragment);
    log.scrollTop = log.scrollHeight;
    updateCounts();
    updateJump();
  }

  function updateCounts() {
    const total = state.buffer.filter((e) => !e.marker).length;
    const rows = log.querySelectorAll(".row:not(.marker)").length;
    $("counts").textContent = total ? `${rows} of ${total} lines shown` : "";
  }

  function updateJump() {
    $("jump").hidden = atBottom();
  }

  // ----- the live feed (server-sent events) --------------------------------------------

  function setStream(kind, text) {
    const element = $("stream-state");
    element.dataset.state = kind;
    element.textContent = text;
  }

  // The divider between two boots' lines: text, like every row.
  function bootDivider(snapshot) {
    const first = snapshot.lines.length ? parse(snapshot.lines[0]) : null;
    const since = first && first.time ? `, its log from ${fullTime(first.time)}` : "";
    const entry = marker(`\u2014 new boot ${snapshot.boot_id.slice(0, 8)} \u2014`);
    entry.boot = true;
    entry.title = `Boot ${snapshot.boot_id}${since}; the lines above are the previous boot's`;
    return entry;
  }

  function reset(snapshot) {
    // The same boot again (a reconnection): its snapshot replaces the view. A new boot: the
    // old boot's lines stay above a divider (within the buffer's bound).
    let entries = [];
    if (state.bootId && snapshot.boot_id !== state.bootId) {
      entries = state.buffer.concat(state.pending);
      entries.push(bootDivider(snapshot));
    }
    state.bootId = snapshot.boot_id;
    state.pending = [];
    const missing = snapshot.total - snapshot.lines.length;
    if (snapshot.evicted > 0) {
      entries.push(marker(`${snapshot.evicted} older lines of this boot were dropped from the bounded in-memory log`));
    }
    if (missing > 0) {
      entries.push(marker(`${missing} earlier lines of this boot are not shown here; the server report has them`));
    }
    for (const line of snapshot.lines) entries.push(parse(line));
    const newest = entries[entries.length - 1];
    if (newest && newest.time) setZone(zoneOf(newest.time));
    state.buffer = entries.slice(-MAX_BUFFER);
    rebuild();
  }

  function connect() {
    if (state.source || !state.admin) return;
    setStream("connecting", "Connecting\u2026");
    const source = new EventSource("/logs/events");
    state.source = source;
    source.addEventListener("snapshot", (event) => {
      state.retry = 1000;
      const snapshot = JSON.parse(event.data);
      reset(snapshot);
      setStream("live", "Live");
      if (state.status && snapshot.boot_id !== state.status.boot_id) refreshStatus();
    });
    source.addEventListener("message", (event) => {
      const items = JSON.parse(event.data);
      enqueue(items.map((item) =>
        typeof item === "number"
          ? marker(`${item} lines skipped: this page could not keep up`)
          : parse(item)));
    });
    source.addEventListener("end", (event) => {
      const reason = JSON.parse(event.data).reason;
      disconnect();
      setStream("down", reason === "reboot"
        ? "The device is rebooting; reconnecting\u2026"
        : "The device is shutting down; reconnecting\u2026");
      reconnectLater(2000);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        disconnect();
        setStream("down", "Disconnected; retrying\u2026");
        reconnectLater();
      } else {
        setStream("connecting", "Reconnecting\u2026");
      }
    });
  }

  function disconnect() {
    if (state.source) state.source.close();
    state.source = null;
  }

  function reconnectLater(delay) {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      if ($("follow").checked) {
        refreshStatus();
        connect();
      }
    }, delay ?? state.retry);
    state.retry = Math.min(state.retry * 2, 15000);
  }

  // ----- status, persistent logging and the admin actions ------------------------------

  async function dca(method, path, data) {
    const api = (state.status && state.status.log_api) || DEFAULT_API;
    if (api.put_only && (method === "PATCH" || method === "POST")) method = "PUT";
    const init = { method, headers: { Accept: "application/json" }, cache: "no-store" };
    if (data !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify({ data });
    }
    const response = await fetch(api.root + path, init);
    let reply = null;
    try {
      reply = await response.json();
    } catch {
      throw new Error(`${response.status} ${response.statusText}`);
    }
    if (!response.ok || reply.status !== "success") {
      throw new Error(reply.error ? reply.error.message : `${response.status} ${response.statusText}`);
    }
    return reply;
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }

  function showStatus(status) {
    state.status = status;
    document.title = `System log \u2014 ${status.hostname}`;
    $("device").textContent = `${status.hostname} \u00b7 ${status.firmware} \u00b7 boot ${status.boot_id.slice(0, 8)}`;
    $("device").title = `Serial ${status.serial}, boot ${status.boot_id}`;
    $("who").textContent = `Signed in as ${status.user} (${status.role})`;
    const p = status.persistent;
    const usage = $("usage");
    usage.value = p.cap ? Math.min(p.size / p.cap, 1) : 0;
    const percent = p.cap ? (100 * p.size) / p.cap : 0;
    const used = `${bytes(p.size)} of ${bytes(p.cap)} (${percent < 1 && p.size ? "<1" : Math.round(percent)} %)`;
    $("usage-text").textContent = used;
    usage.setAttribute("aria-valuetext", used);
    $("paused").hidden = !p.paused;
    setZone(zoneOf(status.time || ""));
    showRemote(status.remote_syslog);
    if (!status.may.read_log) showFacts(status);
  }

  // What a viewer or operator may see, and what needs the admin role (named, not fetched:
  // the log, remotesyslog.cgi and auditlog.cgi are admin-only, DECISIONS 13).
  function showFacts(status) {
    const p = status.persistent;
    const v = status.volatile;
    const adminOnly = "Admin only";
    const facts = [
      ["Device", `${status.hostname} \u00b7 serial ${status.serial}`],
      ["Firmware", `${status.firmware} (AXIS OS ${status.axis_os})`],
      ["Current boot", `${status.boot_id.slice(0, 8)} \u00b7 up ${uptime(status.uptime)}`],
      ["Device clock", fullTime(status.time || "")],
      ["Persistent logging", (p.enabled ? "On" : "Off") + (p.paused ? " (paused: the disk is almost full)" : "")],
      ["Persistent storage", `${bytes(p.size)} used of ${bytes(p.cap)} (files of ${bytes(p.file_size)})`],
      ["Log in memory", `${v.lines} lines, ${bytes(v.size)} of ${bytes(v.cap)}`],
      ["The system log", `${adminOnly}: reading it needs the admin role`],
      ["Remote syslog settings", `${adminOnly}: every remotesyslog.cgi method needs the admin role`],
      ["Audit log", `${adminOnly}: auditlog.cgi answers admins only`],
    ];
    const items = [];
    for (const [name, value] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      if (value.startsWith(adminOnly)) dd.className = "locked";
      items.push(dt, dd);
    }
    $("facts").replaceChildren(...items);
    $("overview").hidden = false;
  }

  function uptime(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min` : `${s} s`;
  }

  // The audit log's newest entries (admins, AXIS OS 12.5+), read from auditlog.cgi as text.
  async function refreshAudit() {
    if (!state.status || !state.status.may.read_log || !state.audit) return;
    const card = $("audit");
    try {
      const response = await fetch(`/axis-cgi/auditlog.cgi?tail=${AUDIT_TAIL}`, { cache: "no-store" });
      if (response.status === 404) { // firmware before 12.5: no audit log
        state.audit = false;
        card.hidden = true;
        card.dataset.state = "absent";
        return;
      }
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const lines = (await response.text()).split("\n").filter((line) => line !== "");
      const items = lines.reverse().map((line) => {
        const entry = parse(line);
        const li = document.createElement("li");
        const text = document.createElement("span");
        text.className = "audit-text";
        text.textContent = entry.label ? entry.rest : entry.line;
        if (entry.label) li.append(timeElement(entry.time, "audit-time"), " ");
        li.append(text);
        return li;
      });
      $("audit-lines").replaceChildren(...items);
      $("audit-note").textContent = lines.length
        ? `The newest ${lines.length} ${lines.length === 1 ? "entry" : "entries"}, newest first.`
        : "No entries yet.";
      card.hidden = false;
      card.dataset.state = "shown";
    } catch (error) {
      $("audit-note").textContent = `Cannot read the audit log: ${error.message}`;
    }
  }

  async function refreshStatus() {
    try {
      const response = await fetch("/logs/status", { cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      showStatus(await response.json());
      refreshAudit();
      await refreshSwitch();
    } catch (error) {
      $("device").textContent = `Cannot reach the device: ${error.message}`;
    }
  }

  async function refreshSwitch() {
    if (state.switchBusy) return;
    if (!state.status.log_api) {
      $("persistent").checked = state.status.persistent.enabled === true;
      return;
    }
    const reply = await dca("GET", "/persistent/enabled");
    if (!state.switchBusy) $("persistent").checked = reply.data === true;
  }

  async function setPersistent(event) {
    const input = event.target;
    const wanted = input.checked;
    state.switchBusy = true;
    input.disabled = true;
    $("persistent-note").textContent = wanted ? "Turning on\u2026" : "Turning off\u2026";
    try {
      const reply = await dca("PATCH", "/persistent/enabled", wanted);
      const now = await dca("GET", "/persistent/enabled");
      input.checked = now.data === true;
      const warnings = reply.warnings ? ` (${reply.warnings.join("; ")})` : "";
      $("persistent-note").textContent = `Persistent logging is ${now.data ? "on" : "off"}${warnings}`;
    } catch (error) {
      input.checked = !wanted;
      $("persistent-note").textContent = `Not changed: ${error.message}`;
    } finally {
      state.switchBusy = false;
      input.disabled = !state.status.may.set_persistent;
      refreshStatus();
    }
  }

  async function clearPersistent() {
    const result = $("admin-result");
    result.textContent = "Clearing\u2026";
    try {
      await dca("POST", "/persistent/clearLog", {});
      result.textContent = "The persistent log was cleared.";
    } catch (error) {
      result.textContent = `Not cleared: ${error.message}`;
    }
    refreshStatus();
  }

  async function writeMessage(event) {
    event.preventDefault();
    const message = $("write-message");
    const result = $("write-result");
    const severity = Number($("write-severity").value);
    result.textContent = "Writing\u2026";
    try {
      const reply = await dca("POST", "/writeMessage", { msg: message.value, severity });
      result.textContent = reply.warnings ? `Written, but: ${reply.warnings.join("; ")}` : "Written.";
      message.value = "";
      updateWriteCount();
    } catch (error) {
      result.textContent = `Not written: ${error.message}`;
    }
    refreshStatus();
  }


  // maxlength cuts longer text silently: say how long the message is near the limit, and
  // when a paste was cut, by how much.
  function updateWriteCount() {
    const input = $("write-message");
    const max = input.maxLength;
    const length = input.value.length;
    const note = $("write-count");
    const cut = state.pasteCut;
    state.pasteCut = null;
    note.classList.toggle("limit", length >= max);
    if (cut && cut.pasted > cut.room) {
      note.textContent = `The pasted text had ${cut.pasted} characters; only ${cut.room} fit: ` +
        `a message holds at most ${max} (${length} of ${max} now).`;
    } else if (length >= max) {
      note.textContent = `${length} of ${max} characters: the limit. Anything longer is cut.`;
    } else if (length >= max * 0.9) {
      note.textContent = `${length} of ${max} characters`;
    } else {
      note.textContent = "";
    }
  }

  function notePaste(event) {
    const input = event.target;
    const pasted = event.clipboardData ? event.clipboardData.getData("text").length : 0;
    const selected = (input.selectionEnd ?? 0) - (input.selectionStart ?? 0);
    const room = Math.max(input.maxLength - (input.value.length - selected), 0);
    state.pasteCut = { pasted, room };
  }

  // ----- remote syslog (admins only): status from /logs/status, changes via the CGI ----

  const RS_CGI = "/axis-cgi/remotesyslog.cgi";
  const RS_FIELDS = ["address", "port", "protocol", "format", "severity", "type"];

  function rsErrorText(error) {
    // Every part comes from the server: it only ever reaches the page as textContent.
    const parts = (error.errors && error.errors.length ? error.errors : [error]).map((e) => {
      const details = e.details || {};
      const where = [];
      if (details.propertyName !== undefined) where.push(`field ${details.propertyName}`);
      if (details.address !== undefined) where.push(`address ${details.address}`);
      return `${e.message} (${e.code}${where.length ? ", " + where.join(", ") : ""})`;
    });
    return parts.join("; ");
  }

  async function rsCall(method, params) {
    const body = { apiVersion: "1.2", context: "logs-page", method };
    if (params !== undefined) body.params = params;
    const response = await fetch(RS_CGI, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
    });
    let reply = null;
    try {
      reply = await response.json();
    } catch {
      throw new Error(`${response.status} ${response.statusText}`);
    }
    if (reply.error) throw new Error(rsErrorText(reply.error));
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return reply.data;
  }

  function rsItem(server) {
    const li = document.createElement("li");
    const dest = document.createElement("div");
    dest.className = "rs-dest";
    const host = String(server.address).includes(":") ? `[${server.address}]` : server.address;
    dest.textContent = `${server.protocol} ${host}:${server.port}`;
    const meta = document.createElement("div");
    meta.className = "rs-meta";
    meta.textContent = `${server.syslogFormat} \u00b7 ${server.severity} and more severe \u00b7 type ${server.type}`;
    const health = document.createElement("div");
    health.className = "rs-health";
    li.append(dest, meta, health);
    const h = server.health;
    if (!h) {
      health.textContent = "Not forwarding";
      return li;
    }
    health.textContent = `Sent ${h.sent} \u00b7 dropped ${h.dropped}`;
    const problem = document.createElement("div");
    problem.className = h.problem ? "rs-problem" : "rs-health";
    problem.textContent = h.problem ? `Problem: ${h.problem}` : "No problem";
    li.append(problem);
    return li;
  }

  function rsFill(servers) {
    for (const n of [1, 2]) {
      const server = servers[n - 1];
      $(`rs${n}-address`).value = server ? server.address : "";
      $(`rs${n}-port`).value = server ? String(server.port) : "";
      $(`rs${n}-protocol`).value = server ? server.protocol : "TLS";
      $(`rs${n}-format`).value = server ? server.syslogFormat : "RFC5424";
      $(`rs${n}-severity`).value = server ? server.severity : "Warning";
      $(`rs${n}-type`).value = server ? server.type : "All";
    }
  }

  function showRemote(remote) {
    if (!remote) return;
    const servers = remote.servers || [];
    $("rs-state").textContent = remote.enabled
      ? `Forwarding is on (${servers.length} ${servers.length === 1 ? "server" : "servers"})`
      : servers.length ? "Forwarding is off" : "Forwarding is off; no server is set up";
    $("rs-state").dataset.enabled = String(Boolean(remote.enabled));
    $("rs-servers").replaceChildren(...servers.map(rsItem));
    $("rs-enable").disabled = Boolean(remote.enabled) || !servers.length;
    $("rs-disable").disabled = !remote.enabled;
    $("rs-test").disabled = !remote.enabled;
    if (!state.rsFilled) {
      state.rsFilled = true;
      rsFill(servers);
    }
  }

  function rsServer(n) {
    const address = $(`rs${n}-address`).value.trim();
    if (!address) return null;
    const server = {
      address,
      protocol: $(`rs${n}-protocol`).value,
      syslogFormat: $(`rs${n}-format`).value,
      severity: $(`rs${n}-severity`).value,
      type: $(`rs${n}-type`).value,
    };
    const port = $(`rs${n}-port`).value.trim();
    if (port) server.port = Number(port);
    return server;
  }

  async function rsAction(label, method, params) {
    const result = $("rs-result");
    result.classList.remove("rs-error");
    result.textContent = `${label}\u2026`;
    try {
      const data = await rsCall(method, params);
      result.textContent = method === "test"
        ? "Test messages sent (one per severity at or above each server's threshold)."
        : `Done: forwarding is ${data.enabled ? "on" : "off"}.`;
      if (method === "setup") state.rsFilled = false; // show the servers as stored
      if (method === "test") setTimeout(refreshStatus, 1000); // the counts, once sent
    } catch (error) {
      result.classList.add("rs-error");
      result.textContent = `${label} failed: ${error.message}`;
    }
    await refreshStatus();
  }

  // ----- wiring ------------------------------------------------------------------------

  function applyFilters() {
    state.threshold = Number($("filter-severity").value);
    state.text = $("filter-text").value.trim().toLowerCase();
    rebuild();
  }

  let filterTimer = 0;
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-severity").addEventListener("change", applyFilters);
  $("filter-text").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(applyFilters, 150);
  });
  $("follow").addEventListener("change", (event) => {
    clearTimeout(state.retryTimer);
    if (event.target.checked) {
      connect();
    } else {
      disconnect();
      setStream("paused", "Paused");
    }
  });
  log.addEventListener("scroll", updateJump, { passive: true });
  $("jump").addEventListener("click", () => {
    log.scrollTop = log.scrollHeight;
    updateJump();
  });
  $("persistent").addEventListener("change", setPersistent);
  $("clear-persistent").addEventListener("click", () => $("confirm-clear").showModal());
  $("confirm-clear").addEventListener("close", (event) => {
    if (event.target.returnValue === "clear") clearPersistent();
  });
  $("write-form").addEventListener("submit", writeMessage);
  $("write-message").addEventListener("paste", notePaste);
  $("write-message").addEventListener("input", updateWriteCount);
  // A clamped long line opens (and closes) on a click on it, or on its button (keyboard).
  log.addEventListener("click", (event) => {
    const div = event.target.closest(".row.long");
    if (!div) return;
    const onButton = event.target.closest(".more") !== null;
    if (!onButton && String(window.getSelection())) return; // selecting text, not opening
    toggleRow(div);
  });
  $("rs-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const servers = [rsServer(1), rsServer(2)].filter((server) => server !== null);
    rsAction("Saving the servers", "setup", { servers });
  });
  $("rs-enable").addEventListener("click", () => rsAction("Enabling", "enable"));
  $("rs-disable").addEventListener("click", () => rsAction("Disabling", "disable"));
  $("rs-test").addEventListener("click", () => rsAction("Sending test messages", "test"));

  async function start() {
    try {
      const response = await fetch("/logs/status", { cache: "no-store" });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      showStatus(await response.json());
    } catch (error) {
      $("device").textContent = `Cannot reach the device: ${error.message}`;
      setStream("down", "Not connected");
      setTimeout(start, 5000);
      return;
    }
    const may = state.status.may;
    state.admin = may.read_log; // the admin role (10.x: an admin without a Log API)
    $("persistent").disabled = !may.set_persistent;
    if (!state.status.log_api) {
      $("persistent-note").textContent =
        `Read-only: AXIS OS ${state.status.axis_os} has no Log API to change it.`;
    } else if (!may.set_persistent) {
      $("persistent-note").textContent = "Read-only: changing it requires the admin role.";
    }
    $("admin-tools").hidden = !(may.clear || may.write);
    $("remote-syslog").hidden = !may.remote_syslog;
    refreshAudit();
    try {
      await refreshSwitch();
    } catch (error) {
      $("persistent-note").textContent = `Cannot read the setting: ${error.message}`;
    }
    if (may.read_log) {
      connect();
    } else {
      $("log-notice").hidden = false;
      $("log-notice").textContent =
        `Reading the system log requires the admin role; you are signed in as ` +
        `${state.status.user} (${state.status.role}).`;
      $("filters").hidden = true;
      log.hidden = true;
    }
    setInterval(() => {
      if (!document.hidden) refreshStatus();
    }, STATUS_EVERY);
  }

  start();
})();
