// Reads Markdown on stdin and parses every ```mermaid block with mermaid itself (in jsdom, which
// gives it the DOM it expects). Prints one JSON line per block: {"ok", "type", "error"}.
// Exits 1 when any block does not parse.
import { JSDOM } from "jsdom";
import { readFileSync } from "node:fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

const text = readFileSync(0, "utf8");
const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]);
let failed = 0;
for (const block of blocks) {
  try {
    const parsed = await mermaid.parse(block);
    console.log(JSON.stringify({ ok: true, type: parsed.diagramType, config: parsed.config ?? null }));
  } catch (error) {
    failed += 1;
    console.log(JSON.stringify({ ok: false, error: String(error.message ?? error).split("\n").slice(0, 3).join(" ") }));
  }
}
process.exit(failed ? 1 : 0);
