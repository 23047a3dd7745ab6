// The web client's richText (static/format.js), run under Node: what it makes
// of each text and how long that took.
//
// Input: STATIC_DIR (the web client's folder) in the environment, and a JSON
// object {name: text} on stdin. Output: {name: {parts, ms}} on stdout, each
// part ["text", string] or ["a", text, href].
import { register } from "node:module";
import { pathToFileURL } from "node:url";

const staticDir = process.env.STATIC_DIR;
if (!staticDir) {
  console.error("rich_text.mjs: STATIC_DIR is not set");
  process.exit(2);
}
const staticUrl = pathToFileURL(`${staticDir}/`).href;

// The web client's .js files are ES modules with no package.json to say so,
// which Node before 20.19 takes for CommonJS.
const hooks = `
  export async function load(url, context, nextLoad) {
    if (url.startsWith(${JSON.stringify(staticUrl)})) return nextLoad(url, { ...context, format: "module" });
    return nextLoad(url, context);
  }`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

// The few DOM calls dom.js's h() makes for a link.
class FakeNode {}
class FakeElement extends FakeNode {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this.attributes = {};
    this.children = [];
    this.dataset = {};
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  addEventListener() {}
  append(...children) {
    this.children.push(...children);
  }
  get textContent() {
    return this.children.map((child) => (typeof child === "string" ? child : child.textContent)).join("");
  }
}
globalThis.Node = FakeNode;
globalThis.document = { createElement: (tag) => new FakeElement(tag) };

const { richText } = await import(new URL("format.js", staticUrl).href);

let input = "";
for await (const chunk of process.stdin) input += chunk;

const results = {};
for (const [name, text] of Object.entries(JSON.parse(input))) {
  const started = performance.now();
  const parts = richText(text);
  const ms = performance.now() - started;
  results[name] = {
    ms,
    parts: parts.map((part) =>
      typeof part === "string"
        ? ["text", part]
        : [part.tagName.toLowerCase(), part.textContent, part.attributes.href],
    ),
  };
}
process.stdout.write(JSON.stringify(results));
