"use strict";
// The lightcone demo page: live suggestions, a shared cursor room, the node's freshness,
// the flags, a partition switch and the core nodes (stop, crash, start one). Plain JavaScript, JSON over the edge's websocket
// (subprotocol "lightcone.json.v1"); see docs/protocol.md for every message.
//
// Suggestions climb a ladder, and the page shows which rung answered each keystroke: the
// device (the edge's pack of every one- and two-character answer, GET /suggest/pack, used only
// while the feature is tolerant), a PoP (HTTP answers a cache near the user served), the edge,
// or the core (an answer that waited for a round trip to it: "core_trip").

const ROOM = "demo";
const MOVE_EVERY_MS = 33; // ~30 Hz
const PING_EVERY_MS = 2000; // keeps our member present (timeout 20 s) and measures the RTT
const POLL_EVERY_MS = 1000;
const RESEND_EVERY_MS = 5000;
// Unacknowledged searches are resent for a day at most: well inside the core's retention of
// search ids (LIGHTCONE_SEARCH_RETENTION_S, 7 days), so a resend is never counted twice.
const RESEND_WINDOW_MS = 24 * 3600 * 1000;
const FLAGS_EVERY_MS = 10000;
const SUGGEST_LIMIT = 6;
// The pack is checked with the edge this often (a conditional request: a 304 when unchanged),
// and at once, at most every PACK_RECHECK_MS, when the edge says the level is not the pack's.
const PACK_REFRESH_MS = 30000;
const PACK_RECHECK_MS = 2000;
// The folding rules this page knows how to apply with a pack's table (shared/folding.py,
// FOLD_VERSION): a pack of other rules is not used.
const FOLD_VERSION = 2;
const POP_HITS = ["HIT", "STALE", "UPDATING"]; // X-Cache-Status of an answer a PoP served
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;
const FETCH_TIMEOUT_MS = 3000;
// Starting a core node answers once it is ready: seconds, more on a busy machine.
const CORE_ACTION_TIMEOUT_MS = 60000;
const KEY_ME = "lightcone.me";
const KEY_PENDING = "lightcone.pending";
const KEY_SESSION = "lightcone.session";
const TOKEN_SPARE_S = 60; // fetch a new room token when the one we hold expires sooner
const ROOM_AUTH_ERRORS = ["unauthorized", "bad_token", "token_expired"];

const NAMES_A = ["Swift", "Quiet", "Bright", "Lucky", "Brave", "Calm", "Clever", "Sunny"];
const NAMES_B = ["Otter", "Falcon", "Lynx", "Heron", "Koala", "Panda", "Gecko", "Orca"];
const COLORS = ["#e4572e", "#2e86de", "#17a589", "#8e44ad", "#d4a017", "#c0392b", "#d35400"];

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

const state = {
  controlUrl: null,
  roomAuth: "off", // "token": joins need a room token (from the demo's control API)
  roomToken: null, // {token, expires_at, session} of our last join
  tokenRetried: false,
  topology: null,
  entry: null, // the topology entry we talk to; null: this page's own origin (deployments)
  ws: null,
  attempt: 0,
  reconnectTimer: null,
  nextId: 1,
  sentAt: new Map(), // request id -> performance.now() at send
  rtts: [],
  latestSuggest: null,
  latestQ: "",
  pack: null, // the device pack in use: {version, epoch, level, ..., chars, prefixes}
  packEtag: null,
  packUrl: null,
  packLoading: false,
  packCheckedAt: 0,
  level: null, // the suggestion feature's level, as the edge last said (/status, an answer)
  viaPop: false, // this page came through a PoP: suggestions go over HTTP for it to serve
  httpSeq: 0,
  bookmark: null, // the last bookmark an answer or a search ack carried (session level)
  me: null,
  you: null,
  members: new Map(), // member id -> {id, name, color, region, x, y, reachable, el}
  room: { mode: "–", reachable: true, paused: false, unreachable: new Set() },
  move: { latest: null, timer: null, last: null },
  statusViaWs: false,
  edgeCores: new Map(), // edge region -> the core node it is linked to (label), from its /status
  coresShown: "", // what the core nodes panel shows: redrawn only when it changes
};

// ---- small helpers ----------------------------------------------------------------------

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(url, options = {}, timeoutMs = FETCH_TIMEOUT_MS) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const answer = await fetch(url, { ...options, signal: abort.signal, cache: "no-store" });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.message || `HTTP ${answer.status}`);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

// ---- identity and pending searches (kept in the browser) --------------------------------

function stored(key) {
  try {
    return JSON.parse(localStorage.getItem(key));
  } catch (_) {
    return null;
  }
}

function identity() {
  let me = stored(KEY_ME);
  if (!me || !me.name || !/^#[0-9a-f]{6}$/.test(me.color || "")) {
    me = { name: `${pick(NAMES_A)} ${pick(NAMES_B)}`, color: pick(COLORS) };
    localStorage.setItem(KEY_ME, JSON.stringify(me));
  }
  return me;
}

function session(fresh = false) {
  let value = sessionStorage.getItem(KEY_SESSION);
  if (!value || fresh) {
    value = uuid();
    sessionStorage.setItem(KEY_SESSION, value);
  }
  return value;
}

function pendingSearches() {
  const list = stored(KEY_PENDING) || [];
  return list.filter((s) => Date.now() - (s.at || 0) < RESEND_WINDOW_MS);
}

function savePending(list) {
  localStorage.setItem(KEY_PENDING, JSON.stringify(list.slice(-200)));
}

// ---- the websocket ------------------------------------------------------------------------

function baseUrl() {
  if (!state.entry) return location.origin;
  return behindPop() ? state.entry.pop_url : state.entry.url;
}

// Whether the entry in use has a PoP this page goes through (a central entry has none).
function behindPop() {
  return state.viaPop && (!state.entry || Boolean(state.entry.pop_url));
}

function wsUrl() {
  return `${baseUrl().replace(/^http/, "ws")}/ws`;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  setConn("connecting…", "connecting");
  const ws = new WebSocket(wsUrl(), ["lightcone.json.v1"]);
  state.ws = ws;
  ws.onopen = () => onOpen(ws);
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = () => onClose(ws);
}

function onOpen(ws) {
  if (ws !== state.ws) return;
  state.attempt = 0;
  setConn(`connected to ${state.entry ? state.entry.target_region : "this edge"}`, "up");
  join();
  resendPending();
  const q = $("search").value;
  if (q) sendSuggest(q);
}

function onClose(ws) {
  if (ws !== state.ws) return; // an old socket we replaced on purpose
  state.ws = null;
  state.sentAt.clear();
  clearMembers();
  const delay = Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  state.attempt += 1;
  setConn(`disconnected · retrying in ${ms(delay)}`, "down");
  state.reconnectTimer = setTimeout(connect, Math.max(100, delay));
}

function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(message));
  return true;
}

function request(message) {
  if (message.id === undefined) message.id = state.nextId++;
  if (!send(message)) return null;
  state.sentAt.set(message.id, performance.now());
  return message.id;
}

function roundTrip(id) {
  const started = state.sentAt.get(id);
  state.sentAt.delete(id);
  return started === undefined ? null : performance.now() - started;
}

function setConn(text, kind) {
  const node = $("ws-state");
  node.textContent = text;
  node.dataset.state = kind;
}

const HANDLERS = {
  suggestions: onSuggestions,
  search_ack: onSearchAck,
  error: onError,
  pong: (m) => showMeasured(roundTrip(m.id)),
  presence: onPresence,
  joined: (m) => upsertMember(m.member),
  left: onLeft,
  moves: onMoves,
  room_status: applyRoomStatus,
};

function onMessage(message) {
  const handler = HANDLERS[message.type];
  if (handler) handler(message);
}

function onError(message) {
  const rtt = roundTrip(message.id);
  if (ROOM_AUTH_ERRORS.includes(message.code)) {
    onRoomRefused(message);
  } else if (message.id === state.latestSuggest) {
    $("suggestions").replaceChildren();
    $("suggestions").dataset.q = state.latestQ;
    showSuggestMeta(`${ms(rtt)} · error ${message.code}: ${message.message}`, true);
  } else if (typeof message.id === "string" && message.id.startsWith("probe-")) {
    renderStatusFromWs({ error: message.code });
  } else if (pendingSearches().some((s) => s.id === message.id)) {
    // outbox_full and rate limits pass; anything else is final: stop resending it.
    const retry = ["outbox_full", "rate_limited", "too_many_in_flight"].includes(message.code);
    const status = retry ? `retrying (${message.code})` : `error: ${message.code}`;
    onSearchAck({ id: message.id, status, version: null });
  }
}

// ---- suggestions and searches -------------------------------------------------------------

function sendSuggest(q) {
  state.latestQ = q;
  state.httpSeq += 1; // an HTTP answer still on its way is an older keystroke's
  const started = performance.now();
  const local = deviceAnswer(q);
  if (local) {
    const took = performance.now() - started; // the answer's time, as a round trip's: no drawing
    state.latestSuggest = null; // so is a websocket answer still on its way
    renderSuggestions(local);
    showRung("device");
    showSuggestMeta(
      `${took.toFixed(2)} ms on this device · v${state.pack.version} · ${state.pack.level}`,
    );
    return;
  }
  $("suggestions").classList.toggle("outdated", $("suggestions").dataset.q !== q);
  if (behindPop()) {
    suggestOverHttp(q, state.httpSeq);
    return;
  }
  const message = { type: "suggest", q, limit: SUGGEST_LIMIT };
  if (state.level === "session" && state.bookmark) message.bookmark = state.bookmark;
  state.latestSuggest = request(message);
}

function onSuggestions(message) {
  const rtt = roundTrip(message.id);
  if (typeof message.id === "string" && message.id.startsWith("probe-")) {
    renderStatusFromWs(message);
    return;
  }
  if (message.id !== state.latestSuggest) return; // an older keystroke's answer
  showMeasured(rtt);
  showAnswer(message, rtt, message.core_trip ? "core" : "edge");
}

function showAnswer(answer, rtt, rung) {
  if (answer.bookmark) state.bookmark = answer.bookmark;
  heardLevel(answer.mode);
  renderSuggestions(answer.items);
  showRung(rung);
  const freshness = answer.stale ? "STALE" : "fresh";
  showSuggestMeta(
    `${ms(rtt)} round trip · v${answer.version} · age ${ms(answer.age_ms)} · ` +
      `${answer.mode} · ${freshness} · ${answer.region}`,
    answer.stale,
  );
}

async function suggestOverHttp(q, seq) {
  // Through a PoP: GET /suggest, which the PoP may answer from its cache (by the answer's
  // Cache-Control: only tolerant and bounded answers are ever stored there).
  const url = new URL(`${baseUrl()}/suggest`);
  url.searchParams.set("q", q);
  url.searchParams.set("limit", String(SUGGEST_LIMIT));
  const headers = {};
  if (state.level === "session" && state.bookmark) headers["Lightcone-Bookmark"] = state.bookmark;
  const started = performance.now();
  try {
    // Not this browser's own cache: a repeated keystroke is the PoP's to answer (and show).
    const answer = await fetch(url, { headers, cache: "no-store" });
    const body = await answer.json();
    if (seq !== state.httpSeq) return; // an older keystroke's answer
    const rtt = performance.now() - started;
    if (!answer.ok) {
      $("suggestions").replaceChildren();
      showSuggestMeta(`${ms(rtt)} · error ${body.error}: ${body.message}`, true);
      return;
    }
    body.bookmark = body.bookmark || answer.headers.get("Lightcone-Bookmark");
    const cached = POP_HITS.includes(answer.headers.get("X-Cache-Status"));
    // A cached answer's age_ms is its age when the edge made it, at its Date (whole seconds:
    // the age shown may be up to a second more than the truth, never less).
    const made = Date.parse(answer.headers.get("Date") || "");
    if (cached && !Number.isNaN(made)) body.age_ms += Math.max(0, Date.now() - made);
    showMeasured(rtt);
    showAnswer(body, rtt, cached ? "pop" : body.core_trip ? "core" : "edge");
  } catch (err) {
    if (seq === state.httpSeq) showSuggestMeta(`suggestions unreachable (${err.message})`, true);
  }
}

function showRung(rung) {
  const badge = $("rung");
  badge.hidden = false;
  badge.textContent = rung;
  badge.dataset.rung = rung;
}

// ---- the device rung: the pack --------------------------------------------------------------

// The folded form of `text` by the edge's rules (shared/folding.py), from the pack's table of
// each character's folding; null when the page cannot be sure (a character the table lacks, a
// text the edge would refuse as too long): then the edge answers.
function localFold(text, pack) {
  let spaced = "";
  let count = 0;
  for (const char of text) {
    count += 1;
    if (count > pack.max_query_chars || !Object.hasOwn(pack.chars, char)) return null;
    spaced += pack.chars[char];
  }
  const words = spaced.split(" ").filter((word) => word);
  // An abbreviation expands unless it is the last word and nothing follows it (being typed).
  const last = words.length - (spaced.endsWith(" ") ? 0 : 1);
  const abbreviations = pack.abbreviations;
  return words
    .map((w, i) => (i < last && Object.hasOwn(abbreviations, w) ? abbreviations[w] : w))
    .join("");
}

// The pack's answer to `q`, or null when the edge must answer: only while the feature is
// tolerant (the pack's level and the latest the edge said), and for one or two folded
// characters.
function deviceAnswer(q) {
  const pack = state.pack;
  if (!pack || pack.level !== "tolerant" || state.level !== "tolerant") return null;
  if (pack.fold !== FOLD_VERSION || pack.limit !== SUGGEST_LIMIT) return null;
  const folded = localFold(q, pack);
  if (folded === null) return null;
  const length = [...folded].length;
  if (length < 1 || length > 2) return null;
  return Object.hasOwn(pack.prefixes, folded) ? pack.prefixes[folded] : [];
}

// The edge said which level the feature is at: a pack of another level is checked at once.
function heardLevel(level) {
  if (!level) return;
  state.level = level;
  const due = performance.now() - state.packCheckedAt > PACK_RECHECK_MS;
  if (state.pack && state.pack.level !== level && due) refreshPack();
}

async function refreshPack() {
  // A conditional request the browser makes itself ("no-cache": it sends If-None-Match with the
  // ETag it holds; a 304 gives back the body it kept). The edge's Cache-Control is "no-cache"
  // too: no cache serves the pack without asking the edge.
  const url = `${baseUrl()}/suggest/pack`;
  if (state.packLoading) return;
  state.packLoading = true;
  state.packCheckedAt = performance.now();
  try {
    const answer = await fetch(url, { cache: "no-cache" });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const etag = answer.headers.get("ETag");
    if (url !== `${baseUrl()}/suggest/pack`) return; // the page moved to another entry
    if (etag && etag === state.packEtag && url === state.packUrl) return; // unchanged
    const pack = await answer.json();
    state.pack = pack;
    state.packEtag = etag;
    state.packUrl = url;
    if (state.level === null) state.level = pack.level;
  } catch (_) {
    // The pack stays as it was; without one, every keystroke goes to the edge.
  } finally {
    state.packLoading = false;
  }
}

function dropPack() {
  state.pack = null;
  state.packEtag = null;
  state.packUrl = null;
  state.level = null;
}

function showSuggestMeta(text, bad) {
  const meta = $("suggest-meta");
  meta.textContent = text;
  meta.classList.toggle("bad", Boolean(bad));
}

// How an item matched, when not as a plain prefix: a discreet mark with the detail on hover
// (a typo), or the other name that matched, small beside the term ("Munich  München").
// Kinds this page does not know (the protocol may add some) show as plain suggestions.
function matchMark(item) {
  if (item.match === "alias" && typeof item.alias === "string") {
    const name = el("span", "match alias", item.alias);
    name.title = `matched by another name: ${item.alias}`;
    name.dataset.testid = "suggestion-match";
    return name;
  }
  if (item.match !== "typo") return null;
  const mark = el("span", "match", "≈");
  mark.title = item.typos === 2 ? "matched with 2 typos" : "matched with a typo";
  mark.dataset.testid = "suggestion-match";
  return mark;
}

function renderSuggestions(items) {
  const list = $("suggestions");
  list.dataset.q = state.latestQ;
  list.classList.remove("outdated");
  list.replaceChildren(
    ...items.map((item, i) => {
      const row = el("li", i === 0 ? "active" : "");
      row.dataset.testid = "suggestion";
      const label = el("span", "label");
      label.append(el("span", "term", item.term));
      const how = matchMark(item);
      if (how) label.append(how);
      row.append(label, el("span", "weight", item.weight.toLocaleString()));
      row.addEventListener("mousedown", (event) => {
        event.preventDefault();
        logSearch(item.term);
      });
      return row;
    }),
  );
}

function onSearchKey(event) {
  if (event.key !== "Enter") return;
  // Enter logs the top suggestion of what is typed; Shift+Enter logs the text as typed.
  const list = $("suggestions");
  const top = list.dataset.q === $("search").value && list.querySelector(".active .term");
  const chosen = event.shiftKey || !top ? $("search").value.trim() : top.textContent;
  if (chosen) logSearch(chosen);
}

function logSearch(q) {
  const item = { id: uuid(), q, at: Date.now(), status: "sending…", version: null };
  savePending([...pendingSearches(), item]);
  addSearchRow(item);
  send({ type: "search", id: item.id, q: item.q });
  $("search").value = q;
}

function resendPending() {
  for (const item of pendingSearches()) {
    if (!document.querySelector(`[data-search-id="${item.id}"]`)) addSearchRow(item);
    send({ type: "search", id: item.id, q: item.q });
  }
}

function onSearchAck(ack) {
  if (ack.bookmark) state.bookmark = ack.bookmark;
  const list = pendingSearches();
  const item = list.find((s) => s.id === ack.id);
  if (!item) return;
  Object.assign(item, { status: ack.status, version: ack.version });
  const done = ack.status === "committed" || ack.status.startsWith("error");
  savePending(done ? list.filter((s) => s.id !== ack.id) : list);
  updateSearchRow(item);
}

function addSearchRow(item) {
  const row = el("li");
  row.dataset.searchId = item.id;
  row.dataset.testid = "search-row";
  row.append(el("span", "q", item.q), el("span", "ack"));
  $("searches").prepend(row);
  while ($("searches").children.length > 3) $("searches").lastElementChild.remove();
  updateSearchRow(item);
}

function updateSearchRow(item) {
  const row = document.querySelector(`[data-search-id="${item.id}"]`);
  if (!row) return;
  const ack = row.querySelector(".ack");
  const texts = { committed: `committed v${item.version}`, queued: "queued · will resend" };
  ack.textContent = texts[item.status] || item.status;
  ack.dataset.status = item.status.split(/[: ]/)[0];
}

// ---- the cursor room ----------------------------------------------------------------------

function onPresence(message) {
  clearMembers();
  state.tokenRetried = false;
  state.you = message.you;
  message.members.forEach(upsertMember);
  const paused = message.mode === "strict" && !message.reachable;
  applyRoomStatus({ mode: message.mode, reachable: message.reachable, paused, unreachable: [] });
}

async function join() {
  const { name, color } = state.me;
  const message = { type: "join", room: ROOM, name, color, session: session() };
  if (state.roomAuth === "token") {
    try {
      message.token = await roomToken(message.session);
    } catch (err) {
      showRoomNote(`cannot get a room token: ${err.message}`);
      return;
    }
  }
  send(message);
}

async function roomToken(sessionId) {
  // The demo's control API asks the core's admin API; an app would ask its own backend.
  const held = state.roomToken;
  if (held && held.session === sessionId && held.expires_at - Date.now() / 1000 > TOKEN_SPARE_S) {
    return held.token;
  }
  if (!state.controlUrl) throw new Error("this page has no way to get one here");
  const body = JSON.stringify({ room: ROOM, name: state.me.name, session: sessionId });
  const answer = await getJson(`${state.controlUrl}/room-token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  state.roomToken = { token: answer.token, expires_at: answer.expires_at, session: sessionId };
  return answer.token;
}

function onRoomRefused(message) {
  // The edge refused our join (LIGHTCONE_ROOM_AUTH=token): an expired token is renewed once.
  state.roomToken = null;
  if (message.code === "token_expired" && !state.tokenRetried) {
    state.tokenRetried = true;
    join();
    return;
  }
  showRoomNote(`join refused: ${message.code} (${message.message})`);
}

function showRoomNote(text) {
  state.room.note = text;
  renderRoomInfo();
}

function onLeft(message) {
  if (message.id === state.you) {
    if (message.reason === "evicted") session(true); // another tab took our session
    clearMembers();
    join();
    return;
  }
  const member = state.members.get(message.id);
  if (member) member.el.remove();
  state.members.delete(message.id);
  renderRoomInfo();
}

function onMoves(message) {
  for (const move of message.moves) {
    const member = state.members.get(move.id);
    if (!member) continue;
    member.x = move.x;
    member.y = move.y;
    placeCursor(member);
  }
}

function applyRoomStatus(status) {
  state.room = { ...status, unreachable: new Set(status.unreachable) };
  $("paused").hidden = !status.paused;
  state.members.forEach(styleCursor);
  renderRoomInfo();
  if (state.statusViaWs) renderLink(status.reachable ? "up" : "down");
}

function upsertMember(member) {
  const old = state.members.get(member.id);
  if (old) old.el.remove();
  const cursor = { ...member, el: cursorElement(member) };
  state.members.set(member.id, cursor);
  $("canvas").append(cursor.el);
  placeCursor(cursor);
  styleCursor(cursor);
  renderRoomInfo();
}

function cursorElement(member) {
  const node = el("div", "cursor");
  node.dataset.testid = "cursor";
  node.dataset.memberId = member.id;
  node.dataset.name = member.name;
  node.style.setProperty("--c", member.color);
  node.innerHTML =
    '<svg viewBox="0 0 16 20" width="16" height="20" aria-hidden="true">' +
    '<path d="M1 1 L1 16 L5 12 L8 19 L11 18 L8 11 L14 11 Z"/></svg>';
  const label = el("span", "label");
  label.append(el("span", "who", member.id === state.you ? `${member.name} (you)` : member.name));
  label.append(el("span", "badge", member.region));
  label.append(el("span", "away", "unreachable"));
  node.append(label);
  return node;
}

function placeCursor(member) {
  member.el.style.left = `${member.x / 100}%`;
  member.el.style.top = `${member.y / 100}%`;
  member.el.dataset.x = member.x;
  member.el.dataset.y = member.y;
}

function styleCursor(member) {
  const away = !member.reachable || state.room.unreachable.has(member.id);
  member.el.classList.toggle("unreachable", away);
  member.el.classList.toggle("self", member.id === state.you);
}

function clearMembers() {
  state.members.forEach((member) => member.el.remove());
  state.members.clear();
  renderRoomInfo();
}

function renderRoomInfo() {
  const n = state.members.size;
  const link = state.room.reachable ? "" : " · edge cut off from the core" + meshNote();
  const note = state.room.note ? ` · ${state.room.note}` : "";
  $("room-info").textContent = `${n} here · cursors ${state.room.mode}${link}${note}`;
  $("room-info").classList.toggle("bad", Boolean(state.room.note));
}

// The edge mesh (docs/protocol.md §11): cut off from the core, moves may still flow directly.
function meshNote() {
  const direct = state.room.direct || [];
  if (!direct.length) return "";
  return `: moves still flow directly with ${direct.join(", ")} (joins wait for the core)`;
}

function onPointerMove(event) {
  const box = $("canvas").getBoundingClientRect();
  const clamp = (v) => Math.max(0, Math.min(10000, Math.round(v * 10000)));
  state.move.latest = {
    x: clamp((event.clientX - box.left) / box.width),
    y: clamp((event.clientY - box.top) / box.height),
  };
  if (!state.move.timer) flushMove();
}

function flushMove() {
  const latest = state.move.latest;
  const last = state.move.last;
  state.move.timer = null;
  if (!latest || (last && last.x === latest.x && last.y === latest.y)) return;
  if (send({ type: "move", room: ROOM, x: latest.x, y: latest.y })) state.move.last = latest;
  state.move.timer = setTimeout(flushMove, MOVE_EVERY_MS);
}

// ---- the node panel: /status, or the websocket when /status is out of reach -------------

async function pollStatus() {
  const foreign = new URL(baseUrl()).origin !== location.origin;
  if (foreign && state.statusViaWs) return probeOverWs();
  try {
    renderStatus(await getJson(`${baseUrl()}/status`));
    state.statusViaWs = false;
    $("status-source").textContent = `from ${baseUrl()}/status, every second`;
  } catch (_) {
    // Another origin's /status is unreadable without CORS: ask the edge over the socket.
    state.statusViaWs = true;
    probeOverWs();
  }
}

function probeOverWs() {
  request({ type: "suggest", id: `probe-${state.nextId++}`, q: "", limit: 1 });
  renderLink(!state.ws ? "unreachable" : state.room.reachable ? "up" : "down");
  $("status-source").textContent = "via the websocket: /status of another origin is unreadable";
}

function renderStatus(s) {
  $("node-region").textContent = `${s.region} · ${s.edge_id}`;
  renderLink(s.link, s.last_heard_ms);
  // The core node the edge is on (or trying): it changes when the edge fails over. The demo
  // names it by its label (core-1, ...); a deployment by its URL.
  const label = coreLabel(myEdge(), s.core);
  $("node-core").textContent = label || s.core || "none yet";
  $("node-core").title = s.core || "";
  $("node-version").textContent = `v${s.version}`;
  $("node-age").textContent = ms(s.age_ms);
  $("node-outbox").textContent = `${s.outbox} search${s.outbox === 1 ? "" : "es"} waiting`;
  const silent = s.last_heard_ms === null || s.last_heard_ms === undefined ? s.age_ms : s.last_heard_ms;
  renderStale(s.stale, s.region, silent);
  if (!state.controlUrl) renderFlags(s.flags);
  if (s.flags && s.flags.suggest) heardLevel(s.flags.suggest.level);
}

function renderStatusFromWs(answer) {
  if (answer.error) {
    $("node-age").textContent = `unknown (${answer.error})`;
    renderStale(!state.room.reachable, baseRegion(), null);
    return;
  }
  $("node-region").textContent = answer.region;
  $("node-version").textContent = `v${answer.version}`;
  $("node-age").textContent = ms(answer.age_ms);
  $("node-outbox").textContent = "–";
  renderStale(answer.stale, answer.region, answer.age_ms);
}

function baseRegion() {
  return state.entry ? state.entry.target_region : "this edge";
}

function renderLink(link, heardMs) {
  // What the edge knows of its link: its state ("suspect": up, but the core's heartbeats
  // stopped arriving) and when it last heard from the core. Unknown over the websocket.
  const pill = $("link-state");
  const was = pill.dataset.state;
  if (link === "up" && was && was !== "up" && was !== "suspect") {
    resendPending(); // the edge can commit them now
    if ($("search").value) sendSuggest($("search").value);
  }
  pill.textContent = link;
  pill.dataset.state = link;
  const heard = $("link-heard");
  const known = heardMs !== null && heardMs !== undefined;
  heard.textContent = known ? `last heard from the core ${ms(heardMs)} ago` : "";
  heard.classList.toggle("bad", link !== "up");
}

function renderStale(stale, region, ageMs) {
  $("stale").hidden = !stale;
  document.body.classList.toggle("is-stale", Boolean(stale));
  const age = ageMs === null ? "" : ` for ${ms(ageMs)}`;
  const what = "it keeps serving cached suggestions and local cursors";
  $("stale-text").textContent = `${region} has not heard from the core${age}: ${what}`;
  $("node-age").classList.toggle("bad", Boolean(stale));
}

// ---- flags and partitions (the demo's control API) -----------------------------------------

async function pollControl(withFlags = true) {
  if (!state.controlUrl) return;
  try {
    // GET /flags costs the demo process ~40 ms of CPU (and delays every simulated link),
    // so the flags are read at start, after a switch and every FLAGS_EVERY_MS only.
    const topology = await getJson(`${state.controlUrl}/topology`);
    if (withFlags) renderFlags(await getJson(`${state.controlUrl}/flags`));
    state.topology = topology;
    renderPartition(topology.partitions || {});
    await pollEdgeCores();
    renderCores();
    $("switches-note").textContent = "";
  } catch (err) {
    $("switches-note").textContent = `control API unreachable (${err.message})`;
  }
}

function renderFlags(flags) {
  for (const feature of ["suggest", "cursors"]) {
    const button = $(`flag-${feature}`);
    const flag = flags[feature] || { stale_ok: true, mode: "tolerant" };
    button.textContent = flag.mode;
    button.dataset.on = String(flag.stale_ok);
    button.dataset.mode = flag.mode;
    button.disabled = !state.controlUrl;
  }
}

function renderPartition(partitions) {
  const region = baseRegion();
  const cut = Boolean(partitions[region]);
  const button = $("partition");
  $("partition-row").hidden = !state.controlUrl || !(region in partitions);
  $("partition-region").textContent = region;
  button.textContent = cut ? "cut" : "connected";
  button.dataset.on = String(!cut);
}

async function control(button, method, path, body, timeoutMs = FETCH_TIMEOUT_MS) {
  button.disabled = true;
  const headers = { "content-type": "application/json" };
  try {
    const options = { method, headers, body: JSON.stringify(body) };
    await getJson(`${state.controlUrl}${path}`, options, timeoutMs);
  } catch (err) {
    $("switches-note").textContent = err.message;
  } finally {
    button.disabled = false;
    await pollControl();
  }
}

// ---- core nodes: which edges each serves, its state, stop / crash / start ----------------

function edgeNodes() {
  return state.topology ? state.topology.nodes.filter((n) => n.kind === "edge") : [];
}

function myEdge() {
  return edgeNodes().find((n) => n.region === baseRegion()) || null;
}

function coreLabel(edge, coreUrl) {
  // An edge's /status names the URL it dialled: in the demo, one of its core_links.
  if (!edge || !coreUrl) return null;
  const found = Object.entries(edge.core_links || {}).find(([, url]) => url === coreUrl);
  return found ? found[0] : null;
}

async function pollEdgeCores() {
  // Each edge's own /status (the demo's edges allow any origin to read it).
  await Promise.all(
    edgeNodes().map(async (edge) => {
      let on = null;
      try {
        const s = await getJson(`${edge.url}/status`);
        if (s.link === "up" || s.link === "suspect") on = coreLabel(edge, s.core);
      } catch (_) {
        on = null;
      }
      state.edgeCores.set(edge.region, on);
    }),
  );
}

function renderCores() {
  const cores = state.topology ? state.topology.nodes.filter((n) => n.kind === "core") : [];
  $("core-panel").hidden = !state.controlUrl || !cores.length;
  const mine = baseRegion();
  // Redrawn only on a change: a button replaced under the pointer would lose its click.
  const on = edgeNodes().map((edge) => state.edgeCores.get(edge.region));
  const shown = JSON.stringify([cores.map((c) => [c.name, c.state]), on, mine]);
  if (shown === state.coresShown) return;
  state.coresShown = shown;
  $("core-nodes").replaceChildren(
    ...cores.map((core) => {
      const row = el("li");
      row.dataset.testid = "core-node";
      row.dataset.name = core.name;
      const pill = el("span", "pill", core.state);
      pill.dataset.state = core.state;
      pill.dataset.testid = "core-state";
      const regions = edgeNodes()
        .map((edge) => edge.region)
        .filter((region) => state.edgeCores.get(region) === core.name);
      const on = el("span", "on", regions.length ? `edges ${regions.join(" ")}` : "no edge");
      on.dataset.testid = "core-edges";
      on.classList.toggle("mine", regions.includes(mine));
      row.append(el("span", "cname", core.name), pill, on);
      const verbs = core.state === "running" ? ["stop", "crash"] : ["start"];
      for (const verb of verbs) {
        const button = el("button", "", verb);
        button.type = "button";
        button.dataset.testid = `core-${verb}`;
        button.title = {
          stop: "SIGTERM: it closes its links, its edges move to another node",
          crash: "kill -9: its edges find out and move to another node",
          start: "run it again, same port and settings",
        }[verb];
        button.disabled = core.state === "starting" || core.state === "stopping";
        button.addEventListener("click", (event) => coreAction(event, core.name, verb));
        row.append(button);
      }
      return row;
    }),
  );
}

function coreAction(event, name, verb) {
  const path = `/core-nodes/${encodeURIComponent(name)}/${verb === "crash" ? "kill" : verb}`;
  control(event.currentTarget, "POST", path, null, CORE_ACTION_TIMEOUT_MS);
}

function toggleFlag(event) {
  const button = event.currentTarget;
  const body = { stale_ok: button.dataset.on !== "true" };
  control(button, "PUT", `/flags/${button.dataset.feature}`, body);
}

function togglePartition(event) {
  const verb = event.currentTarget.dataset.on === "true" ? "partition" : "heal";
  control(event.currentTarget, "POST", `/${verb}/${baseRegion()}`, null);
}

// ---- the region picker -------------------------------------------------------------------

function entryFor(userRegion, kind) {
  const entries = state.topology ? state.topology.entries : [];
  return entries.find((e) => e.user_region === userRegion && e.kind === kind) || null;
}

function initialEntry() {
  // The entry in the address (#syd:central), else the one this page came through.
  const [userRegion, kind] = location.hash.slice(1).split(":");
  const mine = (e) => [e.url, e.pop_url].some((u) => u && new URL(u).port === location.port);
  const entries = state.topology.entries;
  return entryFor(userRegion, kind) || entries.find(mine) || entries[0];
}

function renderPicker() {
  const select = $("city");
  const cities = new Map(state.topology.entries.map((e) => [e.user_region, e.user_city]));
  select.replaceChildren(
    ...[...cities].map(([region, city]) => {
      const option = el("option", "", city.split(",")[0]);
      option.value = region;
      return option;
    }),
  );
  $("picker").hidden = false;
  showEntry();
}

function showEntry() {
  const e = state.entry;
  if (!e) return;
  $("city").value = e.user_region;
  $("via-edge").classList.toggle("on", e.kind === "edge");
  $("via-central").classList.toggle("on", e.kind === "central");
  $("via-edge").textContent = `nearest edge · ${entryFor(e.user_region, "edge").target_region}`;
  $("via-central").textContent = `central · ${entryFor(e.user_region, "central").target_region}`;
  document.querySelectorAll(".physics .sim").forEach((node) => (node.hidden = false));
  $("simulated-rtt").textContent = ms(e.rtt_ms);
  $("fiber-floor").textContent = ms(e.fiber_floor_ms);
  history.replaceState(null, "", `#${e.user_region}:${e.kind}`);
}

function chooseEntry(userRegion, kind) {
  const next = entryFor(userRegion, kind);
  if (!next || next === state.entry) return;
  state.entry = next;
  showEntry();
  $("measured-rtt").textContent = "–";
  state.rtts = [];
  state.statusViaWs = false;
  const panel = ["node-region", "node-core", "node-version", "node-age", "node-outbox"];
  for (const id of [...panel, "link-state", "link-heard"]) {
    $(id).textContent = "–";
  }
  renderPartition(state.topology.partitions || {});
  dropPack();
  refreshPack();
  const old = state.ws;
  state.ws = null; // its close must not schedule a reconnect
  if (old) old.close();
  state.attempt = 0;
  connect();
  pollStatus();
}

function showMeasured(rtt) {
  if (rtt === null) return;
  state.rtts = [...state.rtts.slice(-4), rtt]; // the median of the last 5 round trips
  const sorted = [...state.rtts].sort((a, b) => a - b);
  $("measured-rtt").textContent = ms(sorted[Math.floor(sorted.length / 2)]);
}

// ---- start -------------------------------------------------------------------------------

function wire() {
  const input = $("search");
  input.addEventListener("input", () => sendSuggest(input.value));
  input.addEventListener("keydown", onSearchKey);
  $("canvas").addEventListener("pointermove", onPointerMove);
  $("flag-suggest").addEventListener("click", toggleFlag);
  $("flag-cursors").addEventListener("click", toggleFlag);
  $("partition").addEventListener("click", togglePartition);
  $("city").addEventListener("change", (e) => chooseEntry(e.target.value, state.entry.kind));
  for (const id of ["via-edge", "via-central"]) {
    $(id).addEventListener("click", (e) => {
      chooseEntry(state.entry.user_region, e.currentTarget.dataset.kind);
    });
  }
}

async function start() {
  state.me = identity();
  $("me").replaceChildren(el("span", "swatch"), el("span", "", state.me.name));
  $("me").style.setProperty("--c", state.me.color);
  wire();
  try {
    const answer = await fetch("/demo/config", { cache: "no-store" });
    // A PoP (nginx) marks each answer it passes with X-Cache-Status: this page came through
    // one, so its suggestions go over HTTP, which the PoP can cache (the websocket it cannot).
    state.viaPop = answer.headers.has("X-Cache-Status");
    const config = await answer.json();
    state.controlUrl = config.control_url;
    state.roomAuth = config.room_auth || "off";
  } catch (_) {
    state.controlUrl = null;
  }
  if (state.controlUrl) {
    await pollControl();
    if (state.topology && state.topology.entries.length) {
      state.entry = initialEntry();
      renderPicker();
    }
  } else {
    $("switches-note").textContent = "read-only: no demo control here";
  }
  connect();
  pollStatus();
  refreshPack();
  setInterval(refreshPack, PACK_REFRESH_MS);
  setInterval(pollStatus, POLL_EVERY_MS);
  setInterval(() => pollControl(false), POLL_EVERY_MS);
  setInterval(pollControl, FLAGS_EVERY_MS);
  const ping = () => request({ type: "ping" });
  setTimeout(() => setInterval(ping, PING_EVERY_MS), POLL_EVERY_MS / 2); // between the polls
  setInterval(resendPending, RESEND_EVERY_MS);
}

start();
