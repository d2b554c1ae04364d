// Boot of the in-browser demo in the served book: the files lie next to this script.
import * as ort from "./ort.wasm.bundle.min.mjs";
import { Tokenizer } from "./tokenizers.min.mjs";
import { start } from "./demo-core.js";

const base = new URL("./", import.meta.url);

async function load(name, onBytes) {
  const response = await fetch(new URL(name, base));
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (onBytes) onBytes(value.length);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) { bytes.set(chunk, at); at += chunk.length; }
  return bytes.buffer;
}

const root = document.getElementById("blgenre-demo");
window.blgenreDemo = start(root, { ort, Tokenizer, load }).catch((err) => {
  root.querySelector(".blgenre-status").textContent = `The demo could not start: ${err.message}`;
  root.dataset.state = "error";
  throw err;
});
