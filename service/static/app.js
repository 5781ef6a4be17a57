// The search page: talks to the API of the same origin; no build step, no dependencies.
"use strict";

const MAX_CHIPS = 10; // matched words shown per hit
const QUERY_WORDS_SHOWN = 16; // the rest behind a "show all" button

const state = {
  index: null, // the index searched (null: the service's default)
  text: "",
  file: null, // the query image (a File) in image mode
  target: "images",
  k: 20,
  boost: [],
  drop: [],
};

const $ = (selector, root = document) => root.querySelector(selector);

function setStatus(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function errorMessage(body, response) {
  if (body && typeof body.detail === "string") return body.detail;
  return `${response.status} ${response.statusText}`;
}

async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(errorMessage(body, response));
  return body;
}

function indexParams() {
  return state.index ? { index: state.index } : {};
}

function searchRequest() {
  if (state.file) {
    const form = new FormData();
    form.append("image", state.file);
    if (state.index) form.append("index", state.index);
    form.append("k", String(state.k));
    form.append("target", state.target);
    state.boost.forEach((w) => form.append("boost", w));
    state.drop.forEach((w) => form.append("drop", w));
    return ["/search", { method: "POST", body: form }];
  }
  const params = new URLSearchParams({
    q: state.text,
    k: state.k,
    target: state.target,
    ...indexParams(),
  });
  state.boost.forEach((w) => params.append("boost", w));
  state.drop.forEach((w) => params.append("drop", w));
  return [`/search?${params}`, undefined];
}

async function search() {
  if (!state.file && !state.text.trim()) {
    setStatus("Type a query or drop an image.", true);
    return;
  }
  setStatus("Searching…");
  document.body.classList.add("busy");
  try {
    const result = await fetchJSON(...searchRequest());
    renderQuery(result.query);
    renderHits(result);
    const noun = result.target === "captions" ? "captions" : "images";
    setStatus(`${result.hits.length} ${noun} in ${Math.round(result.took_ms)} ms · index ${result.index} ${result.index_version}`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    document.body.classList.remove("busy");
  }
}

function chip(word, detail, title) {
  const element = document.createElement("span");
  element.className = "chip";
  element.dataset.word = word;
  element.title = title;
  element.append(word);
  if (detail !== null) {
    const small = document.createElement("small");
    small.textContent = detail;
    element.append(small);
  }
  return element;
}

function button(label, className, title, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.title = title;
  element.addEventListener("click", onClick);
  return element;
}

function imagePath(id) {
  return id.split("/").map(encodeURIComponent).join("/");
}

function edit(word, kind) {
  // kind: "boost", "drop" or null (undo). The edit replaces any earlier one of the same
  // word, typed in the query (+word, -word) or clicked.
  state.boost = state.boost.filter((w) => w !== word);
  state.drop = state.drop.filter((w) => w !== word);
  state.text = state.text.replace(new RegExp(`(^|\\s)[+-]${word}(?=\\s|$)`, "gi"), " ").trim();
  $("#q").value = state.text;
  if (kind) state[kind].push(word);
  search();
}

function renderQuery(query) {
  $("#query-bar").hidden = false;
  const words = $("#query-words");
  words.replaceChildren();
  words.classList.remove("expanded");
  const top = Math.max(1, ...query.words.map((w) => w.weight));
  query.words.forEach(({ word, weight, boosted }, i) => {
    const element = chip(word, null, `query weight ${weight}`);
    element.classList.add("query-word");
    element.classList.toggle("extra", i >= QUERY_WORDS_SHOWN);
    element.classList.toggle("boosted", boosted);
    element.style.setProperty("--strength", (weight / top).toFixed(3));
    element.append(
      button("+", "boost", `boost “${word}”`, () => edit(word, "boost")),
      button("−", "drop", `drop “${word}”`, () => edit(word, "drop")),
    );
    words.append(element);
  });
  const hidden = query.words.length - QUERY_WORDS_SHOWN;
  if (hidden > 0) {
    const more = button(`all ${query.words.length} words`, "more", "show every query word", () => {
      words.classList.toggle("expanded");
      more.textContent = words.classList.contains("expanded")
        ? "fewer words"
        : `all ${query.words.length} words`;
    });
    words.append(more);
  }
  const edits = $("#edits");
  edits.replaceChildren();
  for (const [list, sign, kind] of [[query.boost, "+", "boosted"], [query.drop, "−", "dropped"]]) {
    for (const word of list) {
      const element = chip(`${sign}${word}`, null, `${kind}: click × to undo`);
      element.classList.add("edit", kind);
      element.append(button("×", "undo", `undo ${sign}${word}`, () => edit(word, null)));
      edits.append(element);
    }
  }
}

function renderHits(result) {
  const results = $("#results");
  results.replaceChildren();
  const template = $("#hit-template");
  for (const hit of result.hits) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.id = hit.id;
    $(".thumb", card).src = hit.metadata.thumbnail_url;
    $(".thumb", card).alt = hit.image_id;
    $(".full", card).href = hit.metadata.image_url;
    $(".rank", card).textContent = `#${hit.rank} ${hit.image_id}`;
    $(".score", card).textContent = `score ${hit.score.toLocaleString()}`;
    $(".caption", card).textContent = hit.caption ?? hit.metadata.captions[0] ?? "";
    renderMatches(card, hit);
    results.append(card);
  }
}

function renderMatches(card, hit) {
  const box = $(".matches", card);
  const matches = hit.matches ?? [];
  const top = Math.max(1, ...matches.map((m) => m.contribution));
  for (const match of matches.slice(0, MAX_CHIPS)) {
    const share = match.contribution / hit.score;
    const element = chip(
      match.word,
      `${Math.round(share * 100)}%`,
      `${match.query_weight} × ${match.doc_weight} = ${match.contribution} ` +
        `(${(share * 100).toFixed(1)}% of the score); click for its heatmap`,
    );
    element.classList.add("match");
    element.style.setProperty("--strength", (match.contribution / top).toFixed(3));
    element.addEventListener("click", () => toggleHeatmap(card, hit, match.word, element));
    box.append(element);
  }
  if (matches.length > MAX_CHIPS) {
    const rest = matches.slice(MAX_CHIPS).reduce((sum, m) => sum + m.contribution, 0);
    box.append(chip(`+${matches.length - MAX_CHIPS} more`, null, `together ${rest}`));
  }
}

async function toggleHeatmap(card, hit, word, element) {
  const canvas = $(".heat", card);
  const label = $(".heat-label", card);
  const active = element.classList.contains("active");
  card.querySelectorAll(".match.active").forEach((c) => c.classList.remove("active"));
  if (active) {
    canvas.hidden = true;
    label.hidden = true;
    return;
  }
  element.classList.add("active");
  try {
    const params = new URLSearchParams({ word, ...indexParams() });
    const url = `/heatmaps/${imagePath(hit.image_id)}?${params}`;
    const heatmap = await fetchJSON(url);
    drawHeatmap(canvas, heatmap);
    const peak = Math.max(...heatmap.weights.flat());
    label.textContent = `${word} · peak ${peak.toFixed(3)}`;
    canvas.hidden = false;
    label.hidden = false;
  } catch (error) {
    element.classList.remove("active");
    setStatus(error.message, true);
  }
}

function drawHeatmap(canvas, heatmap) {
  canvas.width = heatmap.cols;
  canvas.height = heatmap.rows;
  const context = canvas.getContext("2d");
  const image = context.createImageData(heatmap.cols, heatmap.rows);
  const peak = Math.max(1e-9, ...heatmap.weights.flat());
  heatmap.weights.flat().forEach((value, i) => {
    const t = value / peak; // 0..1: a dim blue veil to a warm red
    image.data.set([255 * t, 60 + 40 * t, 120 * (1 - t), 255 * (0.35 + 0.3 * t)], i * 4);
  });
  context.putImageData(image, 0, 0);
}

function useFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    setStatus(`${file.name} is not an image.`, true);
    return;
  }
  state.file = file;
  state.boost = [];
  state.drop = [];
  const preview = $("#query-image");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("#q").value = "";
  search();
}

function setUp() {
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.text = $("#q").value;
    state.file = null;
    state.boost = [];
    state.drop = [];
    $("#query-image").hidden = true;
    search();
  });
  for (const id of ["index", "target", "k"]) {
    $(`#${id}`).addEventListener("change", (event) => {
      state[id] = id === "k" ? Number(event.target.value) : event.target.value;
      if (id === "index") showStats();
      if (state.file || state.text) search();
    });
  }
  const zone = $("#drop-zone");
  $("#file").addEventListener("change", (event) => useFile(event.target.files[0]));
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") $("#file").click();
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    useFile(event.dataTransfer.files[0]);
  });
  state.k = Number($("#k").value);
  showStats();
  fetchJSON("/indices-list")
    .then((names) => {
      const select = $("#index");
      select.replaceChildren(...names.map((name) => new Option(name, name)));
      state.index = names[0];
      select.hidden = names.length < 2; // one index: nothing to choose
    })
    .catch((error) => setStatus(error.message, true));
}

function showStats() {
  fetchJSON(`/stats?${new URLSearchParams(indexParams())}`)
    .then((stats) => {
      $("#stats").textContent =
        `${stats.images.toLocaleString()} images · ${stats.captions.toLocaleString()} captions · ` +
        `model ${stats.model.name} · ${stats.vocabulary_size.toLocaleString()} words · ` +
        `index ${stats.index} ${stats.index_version}`;
    })
    .catch((error) => setStatus(error.message, true));
}

setUp();
