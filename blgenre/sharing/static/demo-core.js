// The book's in-browser demo (chapter "Demo apps"): classify titles with the exported models,
// in the reader's browser, with ONNX Runtime Web. Nothing is sent anywhere: every file comes
// from the page's own site (or, in the one-file demo, from the page itself).
//
// start(root, {ort, Tokenizer, load}) builds the widget inside `root`. `load(name, onBytes)`
// returns a file's bytes (an ArrayBuffer); the served book fetches it next to this script, the
// one-file demo decodes it from the page. Every title is shown with textContent, never as HTML.

const LABELS = ["Fiction", "Non-fiction"];
const MAX_TITLE_CHARS = 1000;

// The same cleaning as blgenre.data.text.clean_title: NFC, control characters to spaces,
// whitespace collapsed, at most 1000 characters (code points).
export function cleanTitle(title) {
  const text = String(title ?? "").normalize("NFC").replace(/\p{C}/gu, " ")
    .replace(/\s+/gu, " ").trim();
  return Array.from(text).slice(0, MAX_TITLE_CHARS).join("");
}

function softmax(a, b) {
  const m = Math.max(a, b), ea = Math.exp(a - m), eb = Math.exp(b - m);
  return [ea / (ea + eb), eb / (ea + eb)];
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- models
async function transformerModel(ort, Tokenizer, load, spec, progress) {
  const json = (buf) => JSON.parse(new TextDecoder().decode(buf));
  const tokenizer = new Tokenizer(json(await load(spec.tokenizer, progress)),
                                  json(await load(spec.tokenizer_config, progress)));
  const session = await ort.InferenceSession.create(new Uint8Array(await load(spec.file, progress)));
  const names = session.inputNames;
  const int64 = (xs) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  return {
    async predict(titles) {
      const out = [];
      for (const title of titles) {
        let ids = tokenizer.encode(title).ids;
        if (ids.length > spec.max_length) {  // keep [CLS] + the first tokens + [SEP], as Python
          ids = ids.slice(0, spec.max_length - 1).concat(ids.slice(-1));
        }
        const feeds = {};
        for (const name of names) {
          feeds[name] = int64(name === "input_ids" ? ids
                              : ids.map(() => (name === "attention_mask" ? 1 : 0)));
        }
        const logits = (await session.run(feeds)).logits.data;
        out.push(softmax(logits[0], logits[1]));
      }
      return out;
    },
  };
}

async function tfidfModel(ort, load, spec, progress) {
  const session = await ort.InferenceSession.create(new Uint8Array(await load(spec.file, progress)));
  const col = spec.classes.indexOf(LABELS[0]);
  return {
    async predict(titles) {
      if (!titles.length) return [];
      const input = new ort.Tensor("string", titles, [titles.length, 1]);
      const result = await session.run({[session.inputNames[0]]: input});
      const probs = result[spec.output].data;
      return titles.map((_, i) => {
        const pf = probs[i * 2 + col];
        return [pf, 1 - pf];
      });
    },
  };
}

// ---------------------------------------------------------------- CSV in and out
export function parseTitles(text, filename) {
  text = text.replace(/^\uFEFF/, "");
  if (!/\.csv$/i.test(filename)) return text.replace(/[\r\n]+$/, "").split(/\r?\n/);
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  const header = (rows.shift() || []).map((h) => h.trim().toLowerCase());
  const col = header.indexOf("title");
  if (col < 0) throw new Error(`a CSV file needs a 'title' column; found ${JSON.stringify(header)}`);
  return rows.map((r) => r[col] ?? "");
}

function csvField(value) {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// ---------------------------------------------------------------- the widget
export async function start(root, {ort, Tokenizer, load}) {
  ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which static hosts lack
  ort.env.wasm.proxy = false;
  const status = root.querySelector(".blgenre-status");
  const bar = root.querySelector("progress");
  const manifest = JSON.parse(new TextDecoder().decode(await load("models.json")));
  const total = manifest.total_bytes;
  let loaded = 0;
  const progress = (n) => {
    loaded += n;
    bar.value = Math.min(loaded / total, 1);
    status.textContent = `Loading the models into your browser: ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
  };
  ort.env.wasm.wasmBinary = await load(manifest.wasm, progress);
  const models = {};
  for (const spec of manifest.models) {
    models[spec.name] = spec.type === "transformer"
      ? await transformerModel(ort, Tokenizer, load, spec, progress)
      : await tfidfModel(ort, load, spec, progress);
  }
  const names = manifest.models.map((m) => m.name);
  const labelOf = Object.fromEntries(manifest.models.map((m) => [m.name, m.label]));

  async function classify(titles, which = names) {
    const clean = titles.map(cleanTitle);
    const keep = clean.map((t, i) => (t ? i : -1)).filter((i) => i >= 0);
    const results = {};
    for (const name of which) {
      const probs = await models[name].predict(keep.map((i) => clean[i]));
      results[name] = clean.map(() => null);
      keep.forEach((i, k) => { results[name][i] = probs[k]; });
    }
    return results;
  }

  // one title
  const input = root.querySelector(".blgenre-title");
  const button = root.querySelector(".blgenre-classify");
  const table = root.querySelector(".blgenre-results");
  async function classifyOne() {
    table.replaceChildren();
    const title = cleanTitle(input.value);
    if (!title) { status.textContent = "Please enter a book title: the input is empty."; return; }
    const t0 = performance.now();
    const results = await classify([title]);
    const ms = performance.now() - t0;
    const head = el("tr");
    for (const h of ["model", "label", "P(Fiction)", "P(Non-fiction)"]) head.append(el("th", {}, h));
    table.append(head);
    for (const name of names) {
      const [pf, pn] = results[name][0];
      const tr = el("tr", {"data-model": name});
      tr.append(el("td", {}, labelOf[name]), el("td", {class: "blgenre-label"}, pf >= 0.5 ? LABELS[0] : LABELS[1]),
                el("td", {}, pf.toFixed(3)), el("td", {}, pn.toFixed(3)));
      table.append(tr);
    }
    const shown = root.querySelector(".blgenre-shown");
    shown.textContent = `Title: ${title}`;  // the reader's text, as text
    status.textContent = `Classified in ${ms.toFixed(0)} ms, in this browser.`;
  }
  button.addEventListener("click", classifyOne);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") classifyOne(); });

  // a file of titles
  const fileInput = root.querySelector(".blgenre-file");
  const link = root.querySelector(".blgenre-download");
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    link.hidden = true;
    let titles;
    try {
      titles = parseTitles(await file.text(), file.name);
    } catch (err) {
      status.textContent = `${file.name}: ${err.message}`;
      return;
    }
    const results = {};
    for (const name of names) results[name] = [];
    for (let start = 0; start < titles.length; start += 16) {
      const part = await classify(titles.slice(start, start + 16));
      for (const name of names) results[name].push(...part[name]);
      status.textContent = `Classified ${Math.min(start + 16, titles.length)} of ${titles.length} titles`;
    }
    const header = ["title"];
    for (const name of names) header.push(`${name}_label`, `${name}_prob_fiction`, `${name}_prob_non_fiction`);
    const lines = [header.join(",")];
    titles.forEach((title, i) => {
      const row = [csvField(title)];
      for (const name of names) {
        const p = results[name][i];
        row.push(p ? (p[0] >= 0.5 ? LABELS[0] : LABELS[1]) : "", p ? p[0].toFixed(6) : "", p ? p[1].toFixed(6) : "");
      }
      lines.push(row.join(","));
    });
    const blob = new Blob([lines.join("\r\n") + "\r\n"], {type: "text/csv"});
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = file.name.replace(/\.[^.]*$/, "") + "-genres.csv";
    link.hidden = false;
    status.textContent = `Classified ${titles.length} titles from ${file.name}: download the CSV below.`;
  });

  button.disabled = false;
  fileInput.disabled = false;
  bar.hidden = true;
  const readyMs = performance.now();
  status.textContent = `Ready (${(readyMs / 1000).toFixed(1)} s): models ${names.map((n) => labelOf[n]).join(", ")}.`;
  root.dataset.state = "ready";
  return {classify, readyMs, names, bytes: total};
}
