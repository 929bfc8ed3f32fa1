// corsair demo: sends the explainer's requests for real, and shows what corsair's engines say
// about them. The page cannot read the browser's console, so the console message comes from
// corsair's browser engine, run on the server against the API's answers (/demo/predict).
"use strict";

const apiPort = document.body.dataset.apiPort;
const pageOrigin = location.origin;
const apiUrl = `${location.protocol}//${location.hostname}:${apiPort}/api/endpoint`;
let requests = [];
let policy = "correct";
let lastSeq = 0;
let busy = false;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

async function postJson(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

function showLesson(info) {
  $("lesson-title").textContent = info.title;
  $("lesson-served").textContent = info.served_by === "corsair"
    ? "Served by corsair (CorsLayer reading a PolicyHandle, switched live)."
    : "Served with raw headers, the way a misconfigured server would: corsair refuses to build this policy.";
  $("lesson-failure").textContent = info.failure;
  const box = $("lesson-console-box");
  box.hidden = !info.console;
  $("lesson-console").textContent = info.console || "";
  $("fix-builder").textContent = info.fix_builder;
  $("fix-file").textContent = info.fix_file;
  document.body.dataset.policy = info.name;
}

async function switchPolicy(name) {
  const info = await postJson("/demo/policy", { policy: name, origin: pageOrigin });
  policy = name;
  showLesson(info);
}

function headerList(pairs, deciding) {
  const list = el("ul", { class: "headers" });
  let found = false;
  for (const [name, value] of pairs) {
    const line = `${name}: ${value}`;
    if (deciding && name.toLowerCase() === deciding) {
      found = true;
      list.append(el("li", { class: "deciding" }, el("mark", {}, line), " ← the browser's verdict turned on this"));
    } else {
      list.append(el("li", {}, line));
    }
  }
  if (deciding && !found && deciding !== "status") {
    list.append(el("li", { class: "deciding" }, el("mark", {}, `${deciding}: (missing)`), " ← the browser's verdict turned on this"));
  }
  return list;
}

function showExchanges(exchanges) {
  const box = $("exchanges");
  box.replaceChildren();
  if (exchanges.length === 0) {
    box.append(el("p", {}, "No request was sent."));
  }
  for (const x of exchanges) {
    const status = x.deciding === "status" ? el("mark", {}, String(x.status)) : String(x.status);
    box.append(el("div", { class: "exchange", "data-kind": x.preflight ? "preflight" : "actual" },
      el("h4", {}, x.preflight ? "Preflight (sent by the browser, not the script)" : "Actual request"),
      el("p", {}, `${x.method} ${apiUrl}`),
      headerList(x.request, null),
      el("p", {}, "Answer: ", status, ` — server's decision: ${x.decision}`),
      headerList(x.response, x.deciding)));
  }
}

async function realFetch(req) {
  const init = { method: req.method, headers: {}, credentials: req.credentials, mode: "cors", cache: "no-store" };
  let json = false;
  for (const [n, v] of req.headers) {
    init.headers[n] = v;
    if (n.toLowerCase() === "content-type" && v.includes("json")) json = true;
  }
  if (json && req.method !== "GET" && req.method !== "HEAD") init.body = JSON.stringify({ msg: "hello" });
  try {
    const r = await fetch(apiUrl, init);
    await r.text();
    return { allowed: true, status: r.status };
  } catch (e) {
    return { allowed: false, error: String(e) };
  }
}

async function send(id, req) {
  if (busy) return;
  busy = true;
  const result = $("result");
  result.dataset.state = "running";
  result.dataset.request = id;
  try {
    const predicted = await postJson("/demo/predict", {
      url: apiUrl, origin: pageOrigin, method: req.method, headers: req.headers, credentials: req.credentials,
    });
    const before = lastSeq;
    const real = await realFetch(req);
    const log = await (await fetch(`/demo/log?after=${before}`)).json();
    lastSeq = log.last;

    $("result-empty").hidden = true;
    $("result-body").hidden = false;
    const verdict = $("verdict");
    const label = requests.find((r) => r.id === id)?.label || "Composed request";
    verdict.replaceChildren(`${label} (${req.method}), policy “${predicted.policy}”: `,
      el("span", { class: real.allowed ? "allowed" : "blocked" },
        real.allowed ? `allowed by the browser (status ${real.status})` : "blocked by the browser"));
    const agree = predicted.allowed === real.allowed;
    $("agreement").textContent = agree
      ? `corsair predicted ${predicted.allowed ? "allowed" : "blocked"}: it agrees with the browser.`
      : `corsair predicted ${predicted.allowed ? "allowed" : "blocked"}, but the browser did otherwise.`;
    $("console-box").hidden = predicted.allowed;
    $("console-message").textContent = predicted.allowed ? "" : predicted.message;
    showExchanges(predicted.exchanges);
    const lines = log.entries.map((e) => el("li", {},
      `${e.method} ${e.path} from ${e.origin ?? "(no Origin)"}`
      + (e.request_method ? `, asking for ${e.request_method}` : "")
      + (e.request_headers ? ` with ${e.request_headers}` : "")
      + (e.cookie ? ", cookie sent" : "")
      + ` → ${e.status}, ${e.decision} [${e.served_by}]`));
    $("server-log").replaceChildren(...(lines.length ? lines : [el("li", {}, "The API received nothing.")]));
    $("check-command").textContent = predicted.check;

    result.dataset.predicted = predicted.allowed ? "allowed" : "blocked";
    result.dataset.real = real.allowed ? "allowed" : "blocked";
    result.dataset.policy = predicted.policy;
    result.dataset.exchanges = String(predicted.exchanges.length);
    result.dataset.received = String(log.entries.length);
    $("history").tBodies[0].prepend(el("tr", {},
      el("td", {}, label), el("td", {}, predicted.policy),
      el("td", { class: predicted.allowed ? "allowed" : "blocked" }, predicted.allowed ? "allowed" : "blocked"),
      el("td", { class: real.allowed ? "allowed" : "blocked" }, real.allowed ? "allowed" : "blocked")));
    result.dataset.state = "done";
  } catch (e) {
    result.dataset.state = "error";
    $("result-empty").hidden = false;
    $("result-empty").textContent = `The demo itself failed: ${e.message}`;
  } finally {
    busy = false;
  }
}

function composed() {
  const headers = [];
  const name = $("c-header-name").value.trim();
  if (name) headers.push([name, $("c-header-value").value]);
  return { method: $("c-method").value, headers, credentials: $("c-credentials").value };
}

async function start() {
  $("page-origin").textContent = pageOrigin;
  $("api-url").textContent = apiUrl;
  const state = await (await fetch("/demo/state")).json();
  requests = state.requests;
  lastSeq = state.last;
  const choices = $("policies");
  for (const p of state.policies) {
    const input = el("input", { type: "radio", name: "policy", id: `policy-${p.name}`, value: p.name });
    input.checked = p.name === "correct";
    input.addEventListener("change", () => switchPolicy(p.name));
    choices.append(el("label", { htmlFor: input.id }, input, p.title));
  }
  const presets = $("presets");
  for (const r of requests) {
    const b = el("button", { type: "button", id: `send-${r.id}` }, r.label);
    b.addEventListener("click", () => send(r.id, r));
    presets.append(b);
  }
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    send("composed", composed());
  });
  // The API starts with the correct policy for this page's own origin.
  await switchPolicy("correct");
  document.body.dataset.ready = "true";
}

start().catch((e) => {
  $("result-empty").textContent = `The demo could not start: ${e.message}`;
});
