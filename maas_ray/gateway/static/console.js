// maas_ray console: every figure comes from the platform's own API, called with the key
// the user signed in with. The key lives in this tab's sessionStorage only.
"use strict";

const KEY = "maas_api_key";
const ROUTES = JSON.parse(document.getElementById("routes").textContent);
const EXAMPLES = [
  ["English", "A wonderful film, I loved every minute of it."],
  ["中文", "这部电影太精彩了，我非常喜欢。"],
];
const REFRESH_MS = 5000; // deployments and catalog
const TOP = 10; // contributions drawn per explained row
const FIGURES_EVERY = 3; // refreshes: the figures are read every 15 s
const state = { who: null, model: null, detail: null, timer: null, ticks: 0 };

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// The path of a route of the table, its {parameters} filled in (each one segment).
function path(route, params = {}) {
  return ROUTES[route].replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(params[key]));
}

async function api(method, url, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = { error: text };
  }
  if (!resp.ok) {
    const message = (data && data.error) || resp.statusText;
    throw new ApiError(resp.status, message, data && data.code);
  }
  return { status: resp.status, data, headers: resp.headers };
}

// A long management action answers 202 with an operation: follow it to its end.
async function change(route, params, body) {
  const answer = await api("POST", path(route, params), body);
  if (answer.status !== 202) return answer.data; // done (or refused) at once
  let op = answer.data;
  while (op.state === "queued" || op.state === "running") {
    await new Promise((done) => setTimeout(done, 500));
    op = (await api("GET", path("operation", { op_id: op.id }))).data;
  }
  if (op.state === "failed") {
    throw new ApiError(op.error.status, op.error.error, op.error.code);
  }
  return op.result;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

function notice(message) {
  const box = document.getElementById("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

function can(scope) {
  const scopes = state.who ? state.who.scopes : [];
  return scopes.includes("admin") || scopes.includes(scope);
}

function canRead() {
  return ["metrics", "deploy", "register"].some(can);
}

function fixed(value, digits = 3) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

// A contribution or an output: 3 decimals, or as 1.23e-5 when those would show 0.
function num(value) {
  const x = Number(value);
  return x === 0 || Math.abs(x) >= 0.001 ? x.toFixed(3) : x.toExponential(2);
}

// -- sign in ------------------------------------------------------------------------
async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    state.who = (await api("GET", path("whoami"))).data;
  } catch (err) {
    sessionStorage.removeItem(KEY);
    const why = err.status === 401 || err.status === 403 ? "key refused" : "sign-in failed";
    const box = document.getElementById("signin-error");
    box.textContent = `${why}: ${err.message}`;
    box.hidden = false;
    return false;
  }
  document.getElementById("signin-error").hidden = true;
  document.getElementById("who").textContent =
    `${state.who.name} · ${state.who.scopes.join(", ")}`;
  document.getElementById("mlflow-link").href = state.who.mlflow_ui;
  show("who", true);
  show("links", true);
  show("signin-panel", false);
  show("app", true);
  show("actions", can("deploy"));
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
  return true;
}

function signOut() {
  sessionStorage.removeItem(KEY);
  clearInterval(state.timer);
  state.who = null;
  state.model = null;
  show("app", false);
  show("deployments-panel", true);
  show("open-form", false);
  show("who", false);
  show("links", false);
  show("signin-panel", true);
  document.getElementById("api_key").value = "";
}

// -- what runs, what is registered ---------------------------------------------------
async function refresh() {
  if (!state.who) return;
  if (!canRead()) {
    notice("This key may predict only: name the model to open (no catalog, no deployments).");
    show("deployments-panel", false);
    show("open-form", true);
    return;
  }
  try {
    const [status, models] = await Promise.all([
      api("GET", path("status")),
      api("GET", path("list_models")),
    ]);
    renderDeployments(status.data);
    renderCatalog(models.data);
    state.ticks += 1;
    if (state.model && state.ticks % FIGURES_EVERY === 0) await renderFigures(state.model);
    notice("");
  } catch (err) {
    notice(`could not refresh: ${err.message}`);
  }
}

function renderDeployments(rows) {
  const body = document.querySelector("#deployments tbody");
  body.replaceChildren(
    ...rows.map((r) =>
      el(
        "tr",
        { "data-model": r.model },
        el("td", { text: r.model }),
        el("td", { text: r.version || "-" }),
        el("td", { text: r.alias || "-" }),
        el("td", { text: `${r.replicas_running}/${r.replicas_target}` }),
        el("td", { text: r.health, class: r.health === "RUNNING" ? "ok" : "" }),
        el("td", { text: r.traffic }),
        el("td", { text: r.quality }),
      ),
    ),
  );
}

function renderCatalog(models) {
  const list = document.getElementById("catalog");
  list.replaceChildren(
    ...models.map((m) =>
      el(
        "li",
        {},
        el("button", {
          type: "button",
          "data-model": m.name,
          class: m.name === state.model ? "selected" : "",
          text: `${m.name} (v${m.latest_version || "-"})`,
          onclick: () => select(m.name),
        }),
      ),
    ),
  );
}

// -- one model ----------------------------------------------------------------------
async function select(name) {
  state.model = name;
  for (const button of document.querySelectorAll("#catalog button")) {
    button.classList.toggle("selected", button.dataset.model === name);
  }
  document.getElementById("model-title").textContent = name;
  document.getElementById("try-answer").textContent = "";
  document.getElementById("explanation").replaceChildren();
  document.getElementById("action-result").textContent = "";
  show("model-panel", true);
  const buttons = document.querySelectorAll("#try-form button");
  for (const button of buttons) button.disabled = true; // until the example body is in
  document.getElementById("try-body").value = "";
  await renderModel(name);
  for (const button of buttons) button.disabled = false;
  await renderFigures(name);
}

// A key that may not read the catalog: the model's own metadata (version, signature).
async function renderServed(name) {
  show("versions", false); // the registry's view is not this key's to read
  try {
    const meta = (await api("GET", path("model_metadata", { name }))).data;
    fillExample({ inputs: meta.inputs });
    document.getElementById("model-title").textContent = `${name} (version ${meta.version})`;
  } catch (err) {
    notice(`could not read ${name}: ${err.message}`);
    fillExample(null);
  }
}

async function renderModel(name) {
  if (!canRead()) return renderServed(name);
  let detail;
  try {
    detail = (await api("GET", path("show_model", { name }))).data;
  } catch (err) {
    notice(`could not read ${name}: ${err.message}`);
    return;
  }
  state.detail = detail;
  const rows = detail.versions.map((v) => {
    const lineage = [];
    if (v.tags["maas.parent_version"]) lineage.push(`from v${v.tags["maas.parent_version"]}`);
    if (v.run_id) lineage.push(`run ${v.run_id.slice(0, 8)}`);
    const metrics = Object.entries(v.metrics || {})
      .slice(0, 6)
      .map(([k, x]) => `${k} ${fixed(x)}`)
      .join(", ");
    return el(
      "tr",
      { "data-version": v.version },
      el("td", { text: v.version }),
      el("td", { text: v.aliases.join(", ") || "-" }),
      el("td", { text: new Date(v.created_ms).toLocaleString() }),
      el("td", { text: describeSignature(v.signature) }),
      el("td", { text: lineage.join(", ") || "-" }),
      el("td", { text: metrics || "-" }),
    );
  });
  document.querySelector("#versions tbody").replaceChildren(...rows);
  for (const select of document.querySelectorAll("#actions select")) {
    select.replaceChildren(
      ...detail.versions.map((v) => el("option", { value: v.version, text: `v${v.version}` })),
    );
  }
  const serving = detail.versions.find((v) => v.aliases.includes("production"));
  fillExample((serving || detail.versions[0] || {}).signature);
}

function inputsOf(signature) {
  if (!signature || !signature.inputs) return [];
  try {
    return typeof signature.inputs === "string" ? JSON.parse(signature.inputs) : signature.inputs;
  } catch (err) {
    return [];
  }
}

function describeSignature(signature) {
  const inputs = inputsOf(signature);
  if (!inputs.length) return "-";
  return inputs
    .map((i) =>
      i.type === "tensor"
        ? `tensor ${i["tensor-spec"].dtype} [${i["tensor-spec"].shape.join(", ")}]`
        : `${i.name || "?"}: ${i.type}`,
    )
    .join(", ");
}

function sample(type) {
  if (["double", "float"].includes(type)) return 0.0;
  if (["long", "integer"].includes(type)) return 0;
  if (type === "boolean") return false;
  return "example";
}

function zeros(shape) {
  const [first, ...rest] = shape.map((d) => (d < 0 ? 1 : d));
  return rest.length ? Array.from({ length: first }, () => zeros(rest)) : Array(first).fill(0);
}

// A body the model takes, from its signature; text models get one example per language.
function fillExample(signature) {
  const inputs = inputsOf(signature);
  const box = document.getElementById("examples");
  const area = document.getElementById("try-body");
  box.replaceChildren();
  const first = inputs[0] || {};
  const text =
    inputs.length === 1 &&
    (first.type === "string" ||
      (first.type === "tensor" && ["str", "object"].includes(first["tensor-spec"].dtype)));
  if (text) {
    const body = (words) =>
      first.type === "tensor"
        ? { instances: [words] }
        : { dataframe_records: [{ [first.name]: words }] };
    for (const [language, words] of EXAMPLES) {
      const fill = () => {
        area.value = JSON.stringify(body(words), null, 1);
      };
      box.append(el("button", { type: "button", text: language, onclick: fill }));
    }
    area.value = JSON.stringify(body(EXAMPLES[0][1]), null, 1);
  } else if (first.type === "tensor") {
    const shape = first["tensor-spec"].shape.slice(1);
    area.value = JSON.stringify({ instances: [shape.length ? zeros(shape) : 0] });
  } else if (inputs.length) {
    const row = Object.fromEntries(inputs.map((i) => [i.name, sample(i.type)]));
    area.value = JSON.stringify({ dataframe_records: [row] }, null, 1);
  } else {
    area.value = JSON.stringify({ instances: [] });
  }
}

async function tryPredict(event) {
  event.preventDefault();
  const out = document.getElementById("try-answer");
  out.textContent = "…";
  try {
    const answer = await api(
      "POST",
      path("predict", { name: state.model }),
      document.getElementById("try-body").value,
    );
    const version = answer.headers.get("x-maas-model-version");
    out.className = "";
    out.textContent = `version ${version}: ${JSON.stringify(answer.data)}`;
  } catch (err) {
    out.className = "error";
    out.textContent = `${err.status} ${err.code || ""}: ${err.message}`;
  }
}

// The same body explained: per row, what the model answered and why.
async function tryExplain() {
  const box = document.getElementById("explanation");
  box.className = "";
  box.textContent = "…";
  try {
    const answer = await api(
      "POST",
      path("explain", { name: state.model }),
      document.getElementById("try-body").value,
    );
    renderExplanation(answer.data);
  } catch (err) {
    box.className = "error";
    box.textContent = `${err.status} ${err.code || ""}: ${err.message}`;
  }
}

function renderExplanation(answer) {
  const rows = answer.explanations;
  const about = el(
    "p",
    { class: "hint" },
    `version ${answer.version} · ${answer.method} · output: ${answer.output} · ` +
      `${answer.background_rows} background rows · `,
    el("span", { class: "swatch up" }),
    " raises it ",
    el("span", { class: "swatch down" }),
    " lowers it",
  );
  document
    .getElementById("explanation")
    .replaceChildren(about, ...rows.map((row, i) => explainedRow(row, i, rows.length)));
}

// One row as a horizontal bar chart of its largest contributions: right of the axis
// pushed the output up, left pushed it down; the longest bar is half the track.
function explainedRow(row, index, count) {
  const ranked = [...row.attributions].sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  const top = ranked.slice(0, TOP);
  const scale = Math.max(0, ...top.map((a) => Math.abs(a.value))) || 1;
  const head = [
    count > 1 ? `row ${index + 1}` : "",
    row.class !== null && row.class !== undefined ? `class ${row.class}` : "",
    `prediction ${num(row.prediction)}`,
    `baseline ${num(row.baseline)}`,
  ].filter(Boolean);
  const bars = top.map((a) => {
    const sign = a.value >= 0 ? "up" : "down";
    const bar = el("div", { class: `bar ${sign}` });
    bar.style.width = `${(50 * Math.abs(a.value)) / scale}%`;
    return el(
      "div",
      { class: "bar-row", "data-feature": a.feature },
      el("span", { class: "bar-name", title: a.feature, text: a.feature }),
      el("div", { class: "bar-track" }, bar),
      el("span", { class: `bar-value ${sign}`, text: (a.value > 0 ? "+" : "") + num(a.value) }),
    );
  });
  const n = ranked.length;
  const shown =
    n > TOP ? `top ${TOP} of ${n} contributions` : `${n} contribution${n === 1 ? "" : "s"}`;
  return el(
    "div",
    { class: "explanation", "data-row": String(index) },
    el("p", { class: "explain-head", text: head.join(" · ") }),
    ...bars,
    el("p", { class: "hint", text: `${shown}, largest first` }),
  );
}

// -- promote, roll back, canary (keys with the deploy scope) ---------------------------
async function act(what, route, body) {
  const out = document.getElementById("action-result");
  out.className = "";
  out.textContent = `${what} ${state.model}…`;
  try {
    await change(route, { name: state.model }, body);
    out.className = "ok";
    out.textContent = `${what}: done`;
  } catch (err) {
    out.className = "error";
    out.textContent = `${what} refused: ${err.message}`;
  }
  await refresh();
  await renderModel(state.model);
}

function form(id, handler) {
  document.getElementById(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler(new FormData(event.target));
  });
}

// -- figures ------------------------------------------------------------------------
async function renderFigures(name) {
  let report;
  try {
    report = (await api("GET", path("monitoring", { name }) + "?buckets=20")).data;
  } catch (err) {
    document.querySelector("#figures tbody").replaceChildren();
    document.getElementById("window").textContent = `(no figures: ${err.message})`;
    return;
  }
  document.getElementById("window").textContent =
    `(last ${Math.round(report.window_s / 60)} min, read every ${(REFRESH_MS * FIGURES_EVERY) / 1000} s)`;
  const rows = report.versions.map((v) => {
    const w = v.window;
    const drift = v.drift ? v.drift.status : "-";
    return el(
      "tr",
      {},
      el("td", { text: v.version }),
      el("td", { text: v.arm }),
      el("td", { text: String(w.requests) }),
      el("td", { text: fixed(w.error_rate) }),
      el("td", { text: fixed(w.p95_ms, 1) }),
      el("td", { text: String(w.labelled) }),
      el("td", { text: fixed(w.accuracy) }),
      el("td", { text: fixed(w.f1) }),
      el("td", { text: drift, class: drift === "drifting" ? "error" : "" }),
    );
  });
  document.querySelector("#figures tbody").replaceChildren(...rows);
  const served = report.versions.length > 0;
  show("charts", served);
  if (!served) {
    document.getElementById("window").textContent = "(no answers in the window yet)";
  } else if (window.Plotly) {
    drawCharts(report);
  }
}

function drawCharts(report) {
  const bucket = report.bucket_s || 60;
  const line = (title, figure) => ({
    data: report.versions.map((v) => ({
      name: `v${v.version} ${v.arm}`,
      x: v.series.map((p) => new Date(p.start * 1000)),
      y: v.series.map(figure),
      mode: "lines+markers",
      connectgaps: false,
    })),
    layout: {
      title: { text: title, font: { size: 13 } },
      margin: { l: 45, r: 10, t: 30, b: 30 },
      legend: { orientation: "h" },
    },
  });
  const charts = {
    "chart-throughput": line("requests / s", (p) => p.requests / bucket),
    "chart-latency": line("p95 latency (ms)", (p) => p.p95_ms),
    "chart-errors": line("error rate", (p) => (p.requests ? p.errors / p.requests : null)),
    "chart-quality": line("F1 or RMSE (labelled)", (p) => (p.rmse !== null ? p.rmse : p.f1)),
  };
  for (const [id, chart] of Object.entries(charts)) {
    Plotly.react(id, chart.data, chart.layout, { displayModeBar: false, responsive: true });
  }
}

// -- wiring -------------------------------------------------------------------------
document.getElementById("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(document.getElementById("api_key").value.trim());
});
document.getElementById("signout").addEventListener("click", signOut);
document.getElementById("try-form").addEventListener("submit", tryPredict);
document.getElementById("try-explain").addEventListener("click", tryExplain);
form("promote-form", (data) =>
  act(`promote v${data.get("version")}`, "promote", { version: data.get("version") }),
);
form("rollback-form", () => act("roll back", "rollback", {}));
form("open-form", (data) => select(String(data.get("model")).trim()));
form("canary-form", (data) =>
  act(`canary v${data.get("version")} at ${data.get("percent")}%`, "canary", {
    version: data.get("version"),
    percent: Number(data.get("percent")),
  }),
);
if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
