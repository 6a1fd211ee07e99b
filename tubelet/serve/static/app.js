// The tubelet page: plain JavaScript over the server's API (no build step). Upload → search + analysis jobs,
// polled until done; the catalog browsed a page at a time.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#e45756", "#f58518", "#b279a2", "#4c78a8", "#72b7b2", "#eeca3b", "#9d755d", "#ff9da6"];
const state = { offset: 0, limit: 24, current: null, lastFile: null, anomaly: false };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const secs = (s) => `${Number(s).toFixed(1)} s`;
const pct = (x) => `${Math.round(100 * x)}%`;

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const headers = options.headers || {};
  const token = localStorage.getItem("tubelet-token");
  if (token && options.auth) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

async function poll(job, row) {
  const bar = row.querySelector("progress"), label = row.querySelector(".state");
  row.classList.remove("failed");
  while (job.status === "queued" || job.status === "running") {
    bar.value = job.progress;
    label.textContent = job.status === "queued" ? "waiting…" :
      `${job.stage}${job.eta_s != null ? `, about ${Math.ceil(job.eta_s)} s left` : "…"}`;
    await new Promise((ok) => setTimeout(ok, 400));
    job = await api(`/api/jobs/${job.id}`);
  }
  bar.value = 1;
  if (job.status === "failed") {
    row.classList.add("failed");
    label.textContent = `failed: ${job.error}`;
    throw new Error(job.error);
  }
  label.textContent = `done in ${job.elapsed_s.toFixed(1)} s`;
  return job;
}

function hitCard(h) {
  const m = h.match;
  return el("div", { class: "card hit", onclick: () => showDetail(h.id, h.name) },
    el("img", { src: h.thumbnail + "&height=144", alt: h.name, loading: "lazy" }),
    el("div", { class: "body" },
      el("div", { class: "name" }, `${h.rank}. ${h.name}`),
      el("div", { class: "score", title: `similarity ${h.score.toFixed(3)}` },
        el("div", { style: `width:${pct(h.score)}` })),
      el("div", {}, `similarity ${pct(h.score)}`),
      el("div", { class: "muted match" },
        `matches: your ${secs(m.query_start_s)}–${secs(m.query_end_s)} ↔ their ${secs(m.start_s)}–${secs(m.end_s)}`)));
}

function showHits(box, hits) {
  box.replaceChildren(...(hits.length ? hits.map(hitCard) : [el("p", { class: "muted" }, "The catalog is empty.")]));
}

function showOriginality(o, duration) {
  $("originality").hidden = false;
  $("orig-score").textContent = `${pct(o.originality)} original`;
  const verdict = $("orig-verdict");
  verdict.textContent = o.flagged ? "flagged: mostly found in the catalog" : "not flagged";
  verdict.className = o.flagged ? "flagged" : "ok";
  $("orig-detail").textContent = `${secs(o.copied_s)} of ${secs(o.compared_s)} (${pct(o.share)}) also appear in ` +
    `catalog videos. Videos sharing ${pct(o.flag_at)} or more are flagged. Copied parts are coloured on the ` +
    `timeline below, one colour per source.`;
  const sources = [...new Set(o.spans.map((s) => s.id))];
  const colour = (id) => COLOURS[sources.indexOf(id) % COLOURS.length];
  const total = Math.max(duration, 1e-3);
  $("timeline").replaceChildren(...o.spans.map((s) => el("div", {
    class: "span", title: `${secs(s.query_start_s)}–${secs(s.query_end_s)} from ${s.name}`,
    style: `left:${100 * s.query_start_s / total}%;width:${100 * (s.query_end_s - s.query_start_s) / total}%;` +
      `background:${colour(s.id)}` })));
  $("timeline-end").textContent = secs(duration);
  $("spans").replaceChildren(...(o.spans.length ? o.spans.map((s) => el("li", { class: "copied" },
    el("span", { class: "swatch", style: `background:${colour(s.id)}` }),
    el("img", { src: s.thumbnail + "&height=96", alt: s.name, loading: "lazy" }),
    el("span", {}, `your ${secs(s.query_start_s)}–${secs(s.query_end_s)} comes from `,
      el("strong", {}, s.name), ` at ${secs(s.start_s)}–${secs(s.end_s)} (similarity ${s.score.toFixed(3)})`)))
    : [el("li", { class: "muted" }, "No part of this video was found in the catalog.")]));
}

function showReport(job) {
  const a = job.result;
  $("report").hidden = false;
  $("findings").replaceChildren(...a.findings.map((f) => el("li", {}, f)));
  $("report-link").href = job.links.report;
  $("report-frame").src = job.links.report;
  if (a.originality) showOriginality(a.originality, a.duration_s);
}

function showAnomaly(job) {
  const r = job.result;
  $("anomaly").hidden = false;
  $("events").replaceChildren(...(r.events.length ? r.events.map((e) => el("li", { class: "event" },
    `${secs(e.start_s)}–${secs(e.end_s)}: ${e.kind} (score ${e.score.toFixed(2)})`))
    : [el("li", { class: "muted" }, `Nothing unusual in ${secs(r.duration_s)}.`)]));
  $("anomaly-timeline").src = job.links.timeline;
}

async function check(file) {
  showError("");
  state.lastFile = file;
  $("status").hidden = false;
  $("file-name").textContent = file.name;
  for (const id of ["similar", "originality", "report", "anomaly"]) $(id).hidden = true;
  $("add-state").textContent = "";
  const send = (endpoint, fields = {}) => {
    const form = new FormData();
    form.append("file", file);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return api(endpoint, { method: "POST", body: form });
  };
  const search = send("/api/search", { k: 8 }).then((job) => poll(job, $("job-search"))).then((job) => {
    $("similar").hidden = false;
    showHits($("hits"), job.result.results);
  });
  const analysis = send("/api/analyze").then((job) => poll(job, $("job-analyze"))).then(showReport);
  const jobs = [search, analysis];
  $("job-anomaly").hidden = !state.anomaly;
  if (state.anomaly) jobs.push(send("/api/anomaly").then((job) => poll(job, $("job-anomaly"))).then(showAnomaly));
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) showError(`${file.name}: ${failed.reason.message}`);
}

async function addCurrent() {
  if (!state.lastFile) return;
  const form = new FormData();
  form.append("file", state.lastFile);
  $("add-state").textContent = "adding…";
  try {
    let job = await api("/api/videos", { method: "POST", body: form, auth: true });
    while (job.status === "queued" || job.status === "running") {
      await new Promise((ok) => setTimeout(ok, 500));
      job = await api(`/api/jobs/${job.id}`);
    }
    if (job.status === "failed") throw new Error(job.error);
    $("add-state").textContent = job.result.added.length ? "added." : "already in the catalog.";
    refreshCatalog();
  } catch (e) { $("add-state").textContent = `not added: ${e.message}`; }
}

async function showDetail(id, name) {
  state.current = id;
  $("detail").hidden = false;
  $("detail-name").textContent = name;
  $("detail-hits").replaceChildren(el("p", { class: "muted" }, "searching…"));
  $("remove").hidden = !localStorage.getItem("tubelet-token");
  $("detail").scrollIntoView({ behavior: "smooth" });
  try { showHits($("detail-hits"), (await api(`/api/videos/${id}/similar?k=8`)).results); }
  catch (e) { $("detail-hits").replaceChildren(el("p", {}, e.message)); }
}

function videoCard(v) {
  return el("div", { class: "card video", onclick: () => showDetail(v.id, v.name) },
    el("img", { src: v.thumbnail + "?height=144", alt: v.name, loading: "lazy" }),
    el("div", { class: "body" }, el("div", { class: "name" }, v.name),
      el("div", { class: "muted" }, `${secs(v.duration_s)} · ${v.width}×${v.height} · id ${v.id}`)));
}

async function loadVideos(reset) {
  if (reset) { state.offset = 0; $("videos").replaceChildren(); }
  const q = new URLSearchParams({ offset: state.offset, limit: state.limit, sort: $("sort").value,
    q: $("filter").value.trim() });
  try {
    const page = await api(`/api/videos?${q}`);
    $("videos").append(...page.videos.map(videoCard));
    state.offset += page.videos.length;
    $("more").hidden = state.offset >= page.total;
    if (!page.total) $("videos").replaceChildren(el("p", { class: "muted" }, "No videos match."));
  } catch (e) { showError(e.message); }
}

async function refreshCatalog() {
  try {
    const s = await api("/api/catalog");
    $("catalog-summary").textContent = `Catalog “${s.name}”: ${s.videos} videos, ${(s.duration_s / 60).toFixed(1)} ` +
      `minutes, model ${s.model.source}.`;
    $("add-box").hidden = !s.writes;
    state.anomaly = s.anomaly;
  } catch (e) { showError(e.message); }
  loadVideos(true);
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) check(e.target.files[0]); });
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files[0]) check(e.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  $("add-button").addEventListener("click", addCurrent);
  $("more").addEventListener("click", () => loadVideos(false));
  let timer = null;
  $("filter").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => loadVideos(true), 250); });
  $("sort").addEventListener("change", () => loadVideos(true));
  const token = $("token");
  token.value = localStorage.getItem("tubelet-token") || "";
  token.addEventListener("change", () => {
    if (token.value) localStorage.setItem("tubelet-token", token.value); else localStorage.removeItem("tubelet-token");
    $("token-state").textContent = token.value ? "saved in this browser" : "cleared";
  });
  $("remove").addEventListener("click", async () => {
    if (!state.current || !confirm("Remove this video from the catalog?")) return;
    try { await api(`/api/videos/${state.current}`, { method: "DELETE", auth: true }); $("detail").hidden = true; refreshCatalog(); }
    catch (e) { showError(e.message); }
  });
  refreshCatalog();
}

setUp();
