// Small DOM helpers. Every piece of user text reaches the page through
// text nodes or attributes set one by one: nothing here parses HTML.

const PROPERTIES = new Set(["value", "checked", "indeterminate"]);

/** `h("button", {class: "x", onclick, testid: "send"}, "Send")` builds an element. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

function setProps(el, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

/** Appends nodes and strings (as text); skips null, undefined and false; flattens arrays. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces every child of `el`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/**
 * Keyed reconciliation of `container`'s children with `items`
 * (`{key, sig, create}`): an element whose key and signature are unchanged is
 * kept as it is (with its loaded images, focus and selection), a changed one is
 * rebuilt, and the order follows `items`. It keeps long message lists cheap to
 * update without a framework.
 */
export function reconcile(container, items) {
  const existing = new Map();
  for (const el of container.children) existing.set(el.dataset.key, el);
  const kept = new Set();
  let previous = null;
  for (const item of items) {
    let el = existing.get(item.key);
    if (!el || el.dataset.sig !== item.sig) {
      const fresh = item.create();
      fresh.dataset.key = item.key;
      fresh.dataset.sig = item.sig;
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    kept.add(item.key);
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (wanted !== el) container.insertBefore(el, wanted);
    previous = el;
  }
  for (const [key, el] of existing) if (!kept.has(key)) el.remove();
}

// Icons are drawn here from simple shapes (24x24 grid, stroked).
const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  send: [["path", { d: "M4 12 20 4l-4 16-4-7-8-1Z" }], ["path", { d: "m12 13 8-9" }]],
  clip: [["path", { d: "M16 7v8.5a4 4 0 0 1-8 0V6a2.6 2.6 0 0 1 5.2 0v9a1.2 1.2 0 0 1-2.4 0V8" }]],
  search: [["circle", { cx: 11, cy: 11, r: 6.5 }], ["path", { d: "m16 16 4.5 4.5" }]],
  back: [["path", { d: "M15 5 8 12l7 7" }]],
  plus: [["path", { d: "M12 5v14M5 12h14" }]],
  group: [
    ["circle", { cx: 9, cy: 8.5, r: 3.2 }],
    ["path", { d: "M3 19c.6-3.3 3-5 6-5s5.4 1.7 6 5" }],
    ["path", { d: "M15.5 5.6a3 3 0 0 1 0 5.8M17.5 14.3c1.8.6 3 2.2 3.5 4.7" }],
  ],
  logout: [["path", { d: "M10 5H6a1 1 0 0 0-1 1v12a1 1 0 0 0 1 1h4" }], ["path", { d: "M14 8l4 4-4 4M18 12H9" }]],
  info: [["circle", { cx: 12, cy: 12, r: 8.5 }], ["path", { d: "M12 11v5M12 8h.01" }]],
  check: [["path", { d: "m5 12.5 4 4 9-9" }]],
  checks: [["path", { d: "m2.5 12.5 4 4 9-9" }], ["path", { d: "m11 16.5 9-9" }]],
  clock: [["circle", { cx: 12, cy: 12, r: 8 }], ["path", { d: "M12 7.5V12l3 2" }]],
  alert: [["circle", { cx: 12, cy: 12, r: 8.5 }], ["path", { d: "M12 7.5v5.5M12 16.2h.01" }]],
  close: [["path", { d: "M6 6l12 12M18 6 6 18" }]],
  reply: [["path", { d: "M9 7 4 12l5 5" }], ["path", { d: "M4 12h9a7 7 0 0 1 7 7" }]],
  edit: [["path", { d: "M5 19h3.5L19 8.5 15.5 5 5 15.5Z" }], ["path", { d: "m13.5 7 3.5 3.5" }]],
  trash: [["path", { d: "M5 7h14M10 7V5h4v2M7 7l1 12h8l1-12" }]],
  file: [["path", { d: "M7 3.5h6.5L18 8v12.5H7Z" }], ["path", { d: "M13 3.5V8.5h5" }]],
  down: [["path", { d: "M12 5v14M6 13l6 6 6-6" }]],
  chat: [["path", { d: "M4.5 6.5a2 2 0 0 1 2-2h11a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H10l-4.5 3.5v-3.5h0a1 1 0 0 1-1-1Z" }]],
};

export function icon(name, { size = 20, label } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.9");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.classList.add("icon", `icon-${name}`);
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  for (const [tag, attrs] of ICONS[name] ?? []) {
    const shape = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) shape.setAttribute(key, value);
    svg.append(shape);
  }
  return svg;
}
