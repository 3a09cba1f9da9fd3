// Charts as inline SVG: a step line of a running total (earnings, volume, steps over time) and
// a line of a value that goes up and down (a loss). No chart library for two shapes. Each is an
// image to screen readers, labelled with its figures.

const NS = "http://www.w3.org/2000/svg";

function node<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

const [W, H, PAD, LEFT] = [640, 240, 36, 110];

/** An empty chart named `label` for screen readers. */
function canvas(label: string): SVGSVGElement {
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  const title = node("title", {});
  title.textContent = label;
  svg.append(title);
  return svg;
}

/** The axes, the series' path `d`, and the corner labels. */
function draw(svg: SVGSVGElement, d: string, [xLow, xHigh, yHigh]: [string, string, string]): void {
  svg.append(
    node("line", { x1: LEFT, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: "axis" }),
    node("line", { x1: LEFT, y1: PAD, x2: LEFT, y2: H - PAD, class: "axis" }),
    node("path", { d, class: "series" }),
  );
  const text = (x: number, y: number, s: string, anchor: string) => {
    const t = node("text", { x, y, "text-anchor": anchor });
    t.textContent = s;
    svg.append(t);
  };
  text(LEFT, H - PAD + 22, xLow, "start");
  text(W - PAD, H - PAD + 22, xHigh, "end");
  text(LEFT - 8, PAD + 6, yHigh, "end");
  text(LEFT - 8, H - PAD, "0", "end");
}

/** Points `(x, y)` (y a running total; x in blocks, or in `xUnit`) as a step line with labelled axes. */
export function stepChart(
  label: string,
  points: [number, number][],
  yUnit: string,
  xUnit = "block",
): SVGSVGElement {
  // Room on the left for the top value's label; text at 16 units stays legible on a phone.
  const svg = canvas(label);
  if (points.length === 0) return svg;
  const xs = points.map((p) => p[0]);
  // Over blocks, from the block before the first payment, so that the first step shows.
  const x0 = Math.min(...xs) - (xUnit === "block" ? 1 : 0);
  const x1 = Math.max(...xs, x0 + 1);
  const top = Math.max(...points.map((p) => p[1]));
  // All zero (no fees yet): a flat line at the bottom, labelled 0.
  const y1 = top > 0 ? top : 1;
  const X = (x: number) => LEFT + ((x - x0) / (x1 - x0)) * (W - LEFT - PAD);
  const Y = (y: number) => H - PAD - (y / y1) * (H - 2 * PAD);
  let d = `M ${X(x0)} ${Y(0)}`;
  for (const [x, y] of points) d += ` H ${X(x)} V ${Y(y)}`;
  d += ` H ${X(x1)}`;
  const xLabel = (x: number) => (xUnit === "block" ? `block ${x}` : `${x} ${xUnit}`);
  draw(svg, d, [xLabel(x0), xLabel(x1), `${Number(top.toPrecision(3))} ${yUnit}`]);
  return svg;
}

/** Points `(x, y)` (a value that goes up and down, such as a loss) as a line, x in `xUnit`. */
export function lineChart(label: string, points: [number, number][], xUnit: string): SVGSVGElement {
  const svg = canvas(label);
  if (points.length === 0) return svg;
  const x0 = Math.min(...points.map((p) => p[0]));
  const x1 = Math.max(...points.map((p) => p[0]), x0 + 1);
  const y1 = Math.max(...points.map((p) => p[1]), 1e-9);
  const X = (x: number) => LEFT + ((x - x0) / (x1 - x0)) * (W - LEFT - PAD);
  const Y = (y: number) => H - PAD - (y / y1) * (H - 2 * PAD);
  const d = points.map(([x, y], i) => `${i ? "L" : "M"} ${X(x)} ${Y(y)}`).join(" ");
  draw(svg, d, [`${xUnit} ${x0}`, `${xUnit} ${x1}`, `${Number(y1.toPrecision(3))}`]);
  for (const [x, y] of points) svg.append(node("circle", { cx: X(x), cy: Y(y), r: 3, class: "dot" }));
  return svg;
}
