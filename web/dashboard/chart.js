// Line charts drawn as SVG: a few series over time, axes with their extremes, a legend, and a
// text alternative. Each series is `{name, cls, points: [[ms, value], …]}`.

import { h, s } from "./dom.js";

const W = 640;
const H = 180;
const PAD = { left: 64, right: 12, top: 10, bottom: 24 };

export function lineChart({ title, series, format, yMin }) {
  const all = series.flatMap((x) => x.points);
  const figure = h("figure", { class: "chart" }, h("figcaption", {}, title));
  const total = all.length;
  figure.dataset.points = String(total);
  if (total === 0) {
    figure.append(h("p", { class: "empty" }, "No data in this range."));
    return figure;
  }
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 30000; x1 += 30000; }
  let y0 = yMin !== undefined ? Math.min(yMin, ...ys) : Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 === y0) { y1 = y0 + (y0 === 0 ? 1 : Math.abs(y0) * 0.1); }
  const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `${title}: ${series.map((x) => x.name).join(", ")}`,
  });
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    svg.append(
      s("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: py(y), y2: py(y) }),
      s("text", { class: "tick", x: PAD.left - 6, y: py(y) + 4, "text-anchor": "end" }, format(y)),
    );
  }
  const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  svg.append(
    s("text", { class: "tick", x: PAD.left, y: H - 6 }, time(x0)),
    s("text", { class: "tick", x: W - PAD.right, y: H - 6, "text-anchor": "end" }, time(x1)),
  );
  for (const line of series) {
    if (line.points.length === 0) continue;
    const d = line.points
      .map((p, i) => `${i === 0 ? "M" : "L"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
      .join("");
    svg.append(s("path", { class: `line ${line.cls}`, d }, s("title", {}, line.name)));
    if (line.points.length === 1) {
      const [p] = line.points;
      svg.append(s("circle", { class: `dot ${line.cls}`, cx: px(p[0]), cy: py(p[1]), r: 3 }));
    }
  }
  figure.append(svg, h("ul", { class: "legend" },
    series.map((x) => h("li", { class: x.cls }, x.name))));
  return figure;
}
