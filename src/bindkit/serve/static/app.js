// The bindkit search page: a text and/or a dropped file -> POST /search -> the nearest items of each kind.
"use strict";

const $ = (id) => document.getElementById(id);
let KINDS = [];  // kind names from /kinds: file kinds in the service's table order, text kinds last
let droppedFile = null;
let lastQuery = null;  // FormData of the last text/file search, for heatmaps
let present = {};  // kind -> number of stored items, from /health

// The token travels in the URL fragment (never sent to the server in the URL), then lives in this tab only.
function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem("bindkit-token", decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname);
  $("token-box").hidden = true;
}
takeToken();
window.addEventListener("hashchange", takeToken);  // a fragment typed into an open page does not reload it

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = sessionStorage.getItem("bindkit-token");
  if (token) headers.set("Authorization", "Bearer " + token);
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) { $("token-box").hidden = false; throw new Error("this service needs an access token"); }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return res;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// The kinds the service knows fill the kind menu, the file picker's extensions and the result groups' order.
async function loadKinds() {
  const kinds = await (await fetch("/kinds")).json();
  KINDS = [...kinds.filter((k) => !k.text), ...kinds.filter((k) => k.text)].map((k) => k.name);
  const menu = $("file-modality");
  for (const name of KINDS) menu.appendChild(el("option", {}, name));
  $("file-input").setAttribute("accept", [...new Set(kinds.flatMap((k) => k.extensions))].join(","));
}

async function loadHealth() {
  try {
    await loadKinds();
    const h = await (await fetch("/health")).json();
    present = h.kinds;
    $("health").textContent = `${h.items} items · model ${h.model}` + (h.indexed ? " · ANN index" : "");
    const box = $("kinds");
    for (const kind of KINDS) {
      if (!present[kind]) continue;
      const label = document.createElement("label");
      label.innerHTML = `<input type="checkbox" name="kind" value="${kind}" checked> ${kind}`;
      box.appendChild(label);
    }
  } catch (e) { $("health").textContent = "service unreachable"; }
}

// Media behind the token are fetched with the header and shown through object URLs.
async function blobUrl(path) {
  const res = await api(path);
  return URL.createObjectURL(await res.blob());
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function card(r, rank) {
  const c = el("div", { class: "result", "data-id": r.id, "data-modality": r.modality, "data-rank": rank });
  if (!r.thumb) {  // text items: the text itself
    c.appendChild(el("p", { class: "text" }, r.text));
  } else {
    const img = el("img", { alt: `${r.modality} ${r.name}`, class: "thumb" });
    c.appendChild(img);
    blobUrl(r.thumb).then((u) => { img.src = u; }).catch((e) => { img.alt = e.message; });
  }
  if (r.modality === "audio") {
    const a = el("audio", { controls: "", preload: "none" });
    c.appendChild(a);
    blobUrl(r.url).then((u) => { a.src = u; });
  }
  if (r.modality === "video") {
    const play = el("button", { class: "more", type: "button" }, "▶ play video");
    play.onclick = async () => { const v = el("video", { controls: "", autoplay: "" }); v.src = await blobUrl(r.url); play.replaceWith(v); };
    c.appendChild(play);
  }
  const meta = el("div", { class: "meta" });
  meta.appendChild(el("span", { class: "name", title: r.name }, r.label ? `${r.name} · ${r.label}` : r.name));
  meta.appendChild(el("span", { class: "score", title: "cosine similarity" }, r.score.toFixed(3)));
  c.appendChild(meta);
  if (r.modality === "image" && lastQuery) c.appendChild(heatmapButton(r, c.querySelector("img.thumb")));
  const again = el("button", { class: "more", type: "button" }, "search with this");
  again.onclick = () => search({ item: r.id });
  c.appendChild(again);
  return c;
}

// "where?": the last text/file query's heatmap over this image (POST /items/{id}/heatmap), toggled.
function heatmapButton(r, img) {
  const b = el("button", { class: "more heatmap", type: "button" }, "where? (heatmap)");
  let thumb = null;
  b.onclick = async () => {
    if (thumb) { img.src = thumb; thumb = null; b.textContent = "where? (heatmap)"; return; }
    b.disabled = true;
    try {
      const url = URL.createObjectURL(await (await api(`/items/${r.id}/heatmap`, { method: "POST", body: lastQuery })).blob());
      thumb = img.src;
      img.src = url;
      b.textContent = "hide heatmap";
    } catch (e) { status(e.message, true); }
    b.disabled = false;
  };
  return b;
}

function render(results) {
  const root = $("results");
  root.replaceChildren();
  const byKind = {};
  results.forEach((r) => { (byKind[r.modality] = byKind[r.modality] || []).push(r); });
  for (const kind of KINDS) {
    if (!byKind[kind]) continue;
    const g = el("div", { class: "group", "data-modality": kind });
    g.appendChild(el("h2", {}, kind));
    const cards = el("div", { class: "cards" });
    byKind[kind].forEach((r, i) => cards.appendChild(card(r, i)));
    g.appendChild(cards);
    root.appendChild(g);
  }
}

async function search(extra = {}) {
  const form = new FormData();
  const text = $("query-text").value.trim();
  if (text) { form.set("text", text); form.set("text_weight", $("text-weight").value || "1"); }
  if (droppedFile) {
    form.set("file", droppedFile, droppedFile.name);
    form.set("modality", $("file-modality").value);
    form.set("file_weight", $("file-weight").value || "1");
  }
  lastQuery = (text || droppedFile) ? new FormData() : null;  // what a heatmap is drawn for (not item queries)
  if (lastQuery) for (const [k, v] of form.entries()) lastQuery.append(k, v);
  if (extra.item) form.set("item", extra.item);
  if (!text && !droppedFile && !extra.item) { status("Type a text or drop a file to search."); return; }
  const kinds = [...document.querySelectorAll("input[name=kind]:checked")].map((i) => i.value);
  if (kinds.length) form.set("modalities", kinds.join(","));
  form.set("group", "true");
  form.set("k", $("k").value || "6");
  status("searching…");
  try {
    const out = await (await api("/search", { method: "POST", body: form })).json();
    render(out.results);
    const q = out.query.map((t) => `${t.kind}×${t.weight}`).join(" + ");
    status(`${out.results.length} results for ${q} in ${out.ms.toFixed(0)} ms`);
  } catch (e) { status(e.message, true); }
}

function takeFile(file) {
  droppedFile = file;
  $("file-name").textContent = file.name;
  $("file-chip").hidden = false;
  search();
}

function wire() {
  $("search-btn").onclick = () => search();
  $("query-text").addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  $("file-input").addEventListener("change", (e) => { if (e.target.files.length) takeFile(e.target.files[0]); });
  $("file-clear").onclick = () => { droppedFile = null; $("file-input").value = ""; $("file-chip").hidden = true; };
  $("file-modality").onchange = () => search();
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) takeFile(e.dataTransfer.files[0]);
  });
  $("token-save").onclick = () => {
    sessionStorage.setItem("bindkit-token", $("token-input").value);
    $("token-box").hidden = true;
    search();
  };
}

wire();
loadHealth();
