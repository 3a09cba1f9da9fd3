// A step chart of a running total (earnings over blocks) as inline SVG: no chart library for
// one line. It is an image to screen readers, with the same numbers in the table beside it.

const NS = "http://www.w3.org/2000/svg";

function node<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Points `(x, y)` (y a running total; x in blocks, or in `xUnit`) as a step line with labelled axes. */
export function stepChart(
  label: string,
  points: [number, number][],
  yUnit: string,
  xUnit = "block",
): SVGSVGElement {
  // Room on the left for the top value's label; text at 16 units stays legible on a phone.
  const [w, h, pad, left] = [640, 240, 36, 110];
  const svg = node("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label, class: "chart" });
  const title = node("title", {});
  title.textContent = label;
  svg.append(title);
  if (points.length === 0) return svg;
  const xs = points.map((p) => p[0]);
  // From the block before the first payment, so that the first step shows.
  const x0 = Math.min(...xs) - 1;
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...points.map((p) => p[1]), 1e-18);
  const X = (x: number) => left + ((x - x0) / (x1 - x0)) * (w - left - pad);
  const Y = (y: number) => h - pad - (y / y1) * (h - 2 * pad);
  let d = `M ${X(x0)} ${Y(0)}`;
  for (const [x, y] of points) d += ` H ${X(x)} V ${Y(y)}`;
  d += ` H ${X(x1)}`;
  svg.append(
    node("line", { x1: left, y1: h - pad, x2: w - pad, y2: h - pad, class: "axis" }),
    node("line", { x1: left, y1: pad, x2: left, y2: h - pad, class: "axis" }),
    node("path", { d, class: "series" }),
  );
  const text = (x: number, y: number, s: string, anchor: string) => {
    const t = node("text", { x, y, "text-anchor": anchor });
    t.textContent = s;
    svg.append(t);
  };
  const xLabel = (x: number) => (xUnit === "block" ? `block ${x}` : `${x} ${xUnit}`);
  text(left, h - pad + 22, xLabel(x0), "start");
  text(w - pad, h - pad + 22, xLabel(x1), "end");
  text(left - 8, pad + 6, `${Number(y1.toPrecision(3))} ${yUnit}`, "end");
  text(left - 8, h - pad, "0", "end");
  return svg;
}
