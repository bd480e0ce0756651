// Building the page from data without ever parsing data as HTML: every value goes through
// textContent or setAttribute.

const SVG = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: `h("a", {href: "#/"}, "text", child…)`. */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** An SVG element. */
export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG, tag), attrs, children);

/** Microseconds as a short duration: `850 µs`, `12.3 ms`, `1.20 s`. */
export function micros(us) {
  if (us === null || us === undefined || Number.isNaN(us)) return "–";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 1 : 0)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** A ratio as a percentage with enough digits to tell 99.9 from 100. */
export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "–";
  const p = ratio * 100;
  return `${p === 100 ? "100" : p >= 99 ? p.toFixed(3) : p.toFixed(1)}%`;
}

/** A time as the person's local date and time. */
export const when = (iso) => new Date(iso).toLocaleString();

/** Shows `message` in the page's live region (read out by screen readers). */
export function notice(message, kind = "error") {
  const region = document.getElementById("notice");
  region.replaceChildren(message ? h("p", { class: kind }, message) : "");
}
