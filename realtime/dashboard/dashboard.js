// The host dashboard: sign in, pick a window, watch the metrics live over /ws/metrics (docs/realtime.md).
// Plain ES module, no build step; everything it needs comes from this origin.

const TOKEN_KEY = "staypulse.token";
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000]; // reconnect back-off; the last one repeats
const REPORT_POLL_MS = 1000;
const REPORT_POLL_LIMIT = 300; // give up polling a report after about five minutes

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  window: null, // {from, to, property_ids}: what the page asks for
  names: new Map(), // property id -> title
  socket: null,
  seq: null, // the host's last update our figures include (from the last snapshot or update frame)
  shownWindow: null, // the window (as a key) that the figures on screen belong to
  attempts: 0, // failed connection attempts since the socket was last live
  retryTimer: null,
  metrics: null, // the figures on screen, redrawn when the chart's width changes
};

// ---- HTTP ------------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// A JSON request with the bearer token; a problem+json answer becomes an ApiError carrying its `detail`.
async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw await apiError(response);
  return response;
}

async function apiError(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const problem = await response.json();
    detail = problem.detail || problem.title || detail;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401 && state.token) signOut();
  return new ApiError(response.status, detail);
}

// ---- formatting ------------------------------------------------------------------------------------------------

// Money arrives in minor units; the currency's own number of decimals turns it into major units (JPY 0, EUR 2).
function money(minor, currency) {
  if (minor === null || minor === undefined || !currency) return "-";
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency });
  return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
}

const percent = (rate) => `${(rate * 100).toFixed(1)} %`;
const count = (value) => new Intl.NumberFormat().format(value);
const isoDate = (date) => date.toISOString().slice(0, 10);

function currentMonth() {
  const today = new Date();
  const first = new Date(Date.UTC(today.getFullYear(), today.getMonth(), 1));
  const next = new Date(Date.UTC(today.getFullYear(), today.getMonth() + 1, 1));
  return { from: isoDate(first), to: isoDate(next), property_ids: [] };
}

const windowKey = (w) => JSON.stringify([w.from, w.to, [...w.property_ids].sort()]);

// ---- connection indicator --------------------------------------------------------------------------------------

function setConnection(status) {
  const indicator = $("connection");
  indicator.dataset.state = status.replace(" ", "-");
  indicator.textContent = status;
}

// ---- signing in and out ----------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    const response = await api("POST", "/api/v1/auth/login", {
      email: form.email.value,
      password: form.password.value,
    });
    state.token = (await response.json()).access_token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    form.password.value = "";
    await start();
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  }
}

function signOut() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.retryTimer);
  const socket = state.socket;
  state.socket = null; // its close handler sees it is no longer current and does not reconnect
  if (socket) socket.close(1000, "signed out");
  state.seq = null;
  state.window = null; // the next host starts from the current month and all of their properties
  state.shownWindow = null;
  state.metrics = null;
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  setConnection("signed out");
}

// After sign-in (or a reload with a token kept in this tab): properties, the window form, then the socket.
async function start() {
  try {
    await loadProperties();
  } catch (error) {
    signOut();
    $("sign-in-error").textContent = error.status === 403 ? "This account is not a host." : error.message;
    return;
  }
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  state.window = state.window || currentMonth();
  fillWindowForm();
  connect();
}

async function loadProperties() {
  state.names.clear();
  for (let offset = 0; ; offset += 100) {
    const page = await (await api("GET", `/api/v1/hosts/me/properties?limit=100&offset=${offset}`)).json();
    for (const property of page.items) state.names.set(property.id, property.title);
    if (!page.has_more) break;
  }
  const filter = $("property-filter");
  filter.querySelectorAll("label").forEach((label) => label.remove());
  for (const [id, title] of state.names) {
    const label = document.createElement("label");
    const box = Object.assign(document.createElement("input"), { type: "checkbox", name: "property", value: id });
    label.append(box, ` ${title}`);
    filter.append(label);
  }
}

function fillWindowForm() {
  const form = $("window");
  form.from.value = state.window.from;
  form.to.value = state.window.to;
  for (const box of form.querySelectorAll("input[name=property]")) {
    box.checked = state.window.property_ids.includes(box.value);
  }
}

// A new window: told to the open socket (it answers with a snapshot), or used by the next connection.
function changeWindow(event) {
  event.preventDefault();
  const form = event.target;
  $("window-error").textContent = "";
  if (!form.from.value || !form.to.value || form.to.value <= form.from.value) {
    $("window-error").textContent = "'To' must be after 'From'.";
    return;
  }
  const picked = [...form.querySelectorAll("input[name=property]:checked")].map((box) => box.value);
  state.window = { from: form.from.value, to: form.to.value, property_ids: picked };
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify({ type: "subscribe", ...state.window }));
  }
}

// ---- the live socket -------------------------------------------------------------------------------------------

// Opens /ws/metrics with a fresh single-use ticket. Resume: when the figures on screen are of the window we ask
// for, `since=<seq>` makes the server send only the updates we missed (or a snapshot when it no longer keeps
// them). After a window change that no snapshot confirmed yet, we ask for a snapshot instead: a resume that
// missed nothing sends no frame, and the old window's figures would stay on screen.
async function connect() {
  state.retryTimer = null;
  if (!state.token) return;
  setConnection(state.seq === null ? "connecting" : "reconnecting");
  let ticket;
  try {
    ticket = (await (await api("POST", "/api/v1/ws/tickets")).json()).ticket;
  } catch (error) {
    if (state.token) retryLater();
    return;
  }
  if (!state.token) return; // signed out while the ticket was on its way
  const params = new URLSearchParams({ ticket, from: state.window.from, to: state.window.to });
  for (const id of state.window.property_ids) params.append("property_id", id);
  if (state.seq !== null && state.shownWindow === windowKey(state.window)) params.set("since", state.seq);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/metrics?${params}`);
  state.socket = socket;
  socket.addEventListener("message", (event) => receive(socket, JSON.parse(event.data)));
  socket.addEventListener("close", (event) => closed(socket, event));
}

function receive(socket, frame) {
  if (socket !== state.socket) return;
  if (frame.type === "snapshot") {
    state.seq = frame.seq;
    state.shownWindow = windowKey(frame.window);
    live();
    render(frame.metrics);
    $("last-update").textContent = `Snapshot of ${frame.window.from} to ${frame.window.to} at update ${frame.seq}.`;
  } else if (frame.type === "update") {
    // Updates come in seq order, each above the last (after `coalesced` folded ones); an older one is stale.
    if (state.seq !== null && frame.seq <= state.seq) return;
    state.seq = frame.seq;
    live();
    render(frame.metrics);
    const folded = frame.coalesced ? ` (${frame.coalesced} earlier folded in)` : "";
    $("last-update").textContent = `Update ${frame.seq}: ${frame.cause.event_type}${folded}.`;
  } else if (frame.type === "error") {
    $("window-error").textContent = frame.detail;
  }
  // heartbeats only keep the connection open
}

function live() {
  state.attempts = 0;
  setConnection("live");
}

function closed(socket, event) {
  if (socket !== state.socket) return; // replaced or signed out on purpose
  state.socket = null;
  if (event.code === 4403) {
    // a property in the window is no longer ours: fall back to all of them
    state.window = { ...state.window, property_ids: [] };
    fillWindowForm();
  }
  if (event.code === 4400) $("window-error").textContent = event.reason;
  retryLater();
}

function retryLater() {
  setConnection("reconnecting");
  const delay = RETRY_DELAYS_MS[Math.min(state.attempts, RETRY_DELAYS_MS.length - 1)];
  state.attempts += 1;
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(connect, delay);
}

// ---- rendering -------------------------------------------------------------------------------------------------

function render(metrics) {
  state.metrics = metrics;
  const total = metrics.total;
  const currency = metrics.currency;
  $("occupancy-rate").textContent = percent(total.occupancy_rate);
  $("booked-nights").textContent = count(total.booked_nights);
  $("available-nights").textContent = count(total.available_nights);
  $("adr").textContent = money(total.adr, currency);
  $("revpar").textContent = money(total.revpar, currency);
  $("gross-earnings").textContent = money(total.gross_earnings, currency);
  $("net-earnings").textContent = money(total.net_earnings, currency);
  $("currency-note").hidden = currency !== null || metrics.properties.length === 0;
  renderProperties(metrics.properties);
  renderChart(metrics.days, currency);
}

function renderProperties(properties) {
  const body = $("properties").tBodies[0];
  body.replaceChildren(
    ...properties.map(({ property_id, currency, metrics: m }) => {
      const row = document.createElement("tr");
      row.dataset.propertyId = property_id;
      const cells = [
        state.names.get(property_id) || "(deleted property)",
        percent(m.occupancy_rate),
        count(m.booked_nights),
        count(m.available_nights),
        money(m.adr, currency),
        money(m.revpar, currency),
        money(m.gross_earnings, currency),
        money(m.net_earnings, currency),
      ];
      row.append(...cells.map((text) => Object.assign(document.createElement("td"), { textContent: text })));
      return row;
    }),
  );
}

// Bars per day: available nights (light) with booked nights (dark) in front, scaled to the most available in a
// day; gross earnings as a line on its own scale, drawn only when the money is in one currency.
function renderChart(days, currency) {
  const svg = $("chart");
  const width = Math.max(svg.clientWidth, 320); // draw in the element's own pixels, so text is not stretched
  const height = 220;
  const top = 10;
  const bottom = 24;
  const plot = height - top - bottom;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const shapes = [];
  const slot = width / Math.max(days.length, 1);
  const mostNights = Math.max(1, ...days.map((day) => day.available_nights));
  const mostGross = Math.max(1, ...days.map((day) => day.gross_earnings || 0));
  const y = (value, most) => top + plot - (plot * value) / most;
  days.forEach((day, index) => {
    const x = index * slot + slot * 0.15;
    const barWidth = slot * 0.7;
    for (const [kind, nights] of [["available", day.available_nights], ["booked", day.booked_nights]]) {
      const bar = svgElement("rect", {
        class: kind, x, width: barWidth, y: y(nights, mostNights), height: (plot * nights) / mostNights,
      });
      bar.append(svgElement("title", {}, `${day.date}: ${nights} ${kind} night(s)`));
      shapes.push(bar);
    }
    if (index === 0 || index === days.length - 1 || days.length <= 16 || index % 7 === 0) {
      shapes.push(svgElement("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, day.date.slice(5)));
    }
  });
  if (currency !== null && days.length > 0) {
    const points = days.map((day, index) => `${(index + 0.5) * slot},${y(day.gross_earnings, mostGross)}`);
    shapes.push(svgElement("polyline", { class: "gross", points: points.join(" ") }));
    shapes.push(svgElement("text", { x: width - 4, y: top + 10, "text-anchor": "end" }, `max ${money(mostGross, currency)}/day`));
  }
  svg.replaceChildren(...shapes);
}

function svgElement(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// ---- the earnings report ---------------------------------------------------------------------------------------

// Request, poll until the worker is done, then fetch the file with the token and hand it over as a blob link.
async function requestReport() {
  const status = $("report-status");
  const link = $("report-link");
  link.hidden = true;
  const button = $("request-report");
  button.disabled = true;
  try {
    const { from, to } = state.window;
    const format = $("report-format").value;
    let report = await (await api("POST", "/api/v1/reports", { kind: "earnings", from, to, format })).json();
    for (let polls = 0; report.status !== "DONE" && report.status !== "FAILED"; polls += 1) {
      if (polls >= REPORT_POLL_LIMIT) throw new Error("The report is taking too long; try again later.");
      status.textContent = `Report ${report.status === "PENDING" ? "queued" : "being generated"}...`;
      await new Promise((resolve) => setTimeout(resolve, REPORT_POLL_MS));
      report = await (await api("GET", `/api/v1/reports/${report.id}`)).json();
    }
    if (report.status === "FAILED") throw new Error(`The report failed: ${report.error || "unknown error"}`);
    const file = await (await api("GET", `/api/v1/reports/${report.id}/download`)).blob();
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(file);
    link.download = report.file_name || `earnings.${format}`;
    link.textContent = `Download ${link.download}`;
    link.hidden = false;
    status.textContent = `Report ready: ${report.row_count} booking(s).`;
    link.click();
  } catch (error) {
    status.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// ---- wiring ----------------------------------------------------------------------------------------------------

$("sign-in").addEventListener("submit", signIn);
$("window").addEventListener("submit", changeWindow);
$("sign-out").addEventListener("click", signOut);
$("request-report").addEventListener("click", requestReport);
window.addEventListener("resize", () => state.metrics && renderChart(state.metrics.days, state.metrics.currency));
if (state.token) start();
