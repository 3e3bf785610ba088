// The models page's scatter plot. It computes no axis of its own: the ranges, ticks and tick labels come from the
// coordinator (GET /v1/models/{id}/scaling), which takes them from the same PlotAxis and ScalingReport that draw
// `fleetadapt model report`'s SVG; this file only maps those numbers to pixels, with the report's layout.
"use strict";

const FleetPlot = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 480, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 60;

  function node(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.appendChild(document.createTextNode(String(text)));
    return e;
  }

  function fraction(axis, v) { return (v - axis.lower) / Math.max(axis.upper - axis.lower, 1e-12); }
  function f(v) { return v.toFixed(1); }

  /// `x` is "latency_ms" or "size_mb": which of the plot data's axes is horizontal.
  function draw(data, x) {
    const xAxis = data.axes[x], yAxis = data.axes.accuracy;
    const X = v => LEFT + fraction(xAxis, v) * (W - LEFT - RIGHT);
    const Y = v => H - BOTTOM - fraction(yAxis, v) * (H - TOP - BOTTOM);
    const svg = node("svg", { class: "plot", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
    const what = x === "latency_ms" ? "reference latency" : "parameter size";
    svg.appendChild(node("text", { class: "title", x: W / 2, y: 20, "text-anchor": "middle" },
      `${data.name}: ${data.combinations} combinations, estimated accuracy vs ${what}`));
    svg.appendChild(node("line", { class: "axis", x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM }));
    svg.appendChild(node("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM }));
    for (const t of xAxis.ticks) {
      svg.appendChild(node("text", { class: "x-tick", x: f(X(t.value)), y: f(H - BOTTOM + 18), "text-anchor": "middle" }, t.label));
    }
    for (const t of yAxis.ticks) {
      svg.appendChild(node("line", { class: "grid", x1: LEFT, y1: f(Y(t.value)), x2: W - RIGHT, y2: f(Y(t.value)) }));
      svg.appendChild(node("text", { class: "y-tick", x: LEFT - 8, y: f(Y(t.value) + 4), "text-anchor": "end" }, t.label));
    }
    if (x === "latency_ms") {
      for (const b of data.budget_fractions) {
        const bx = X(b * data.full_latency_ms);
        svg.appendChild(node("line", { class: "budget", x1: f(bx), y1: TOP, x2: f(bx), y2: H - BOTTOM }));
        svg.appendChild(node("text", { x: f(bx + 3), y: TOP + 12 }, `${Math.round(b * 100)} %`));
      }
    }
    if (data.chance_accuracy >= yAxis.lower && data.chance_accuracy <= yAxis.upper) {
      const cy = Y(data.chance_accuracy);
      svg.appendChild(node("line", { class: "chance", x1: LEFT, y1: f(cy), x2: W - RIGHT, y2: f(cy) }));
      svg.appendChild(node("text", { class: "chance-label", x: LEFT + 4, y: f(cy - 4) },
        `chance (1 in ${Math.round(1 / data.chance_accuracy)})`));
    }
    svg.appendChild(node("text", { x: W / 2, y: H - 15, "text-anchor": "middle" }, x === "latency_ms"
      ? "latency at batch 1 on the build machine (ms); dashed: 40 / 60 / 80 % of the full model"
      : "parameters of the combination (MB)"));
    svg.appendChild(node("text", { transform: `translate(18 ${f(H / 2)}) rotate(-90)`, "text-anchor": "middle" }, "estimated accuracy"));
    const all = node("g", { class: "all" });
    for (const p of data.points) all.appendChild(node("circle", { cx: f(X(p[x])), cy: f(Y(p.accuracy)), r: 1.5 }));
    svg.appendChild(all);
    const series = x === "latency_ms"
      ? [["frontier", data.frontier, "Pareto frontier of the elastic space"],
         ["uniform", data.uniform, "uniform width (same sparsity everywhere)"],
         ["depth", data.depth_only, "depth only (original or skip)"]]
      : [["frontier", data.size_frontier, "Pareto frontier (size, accuracy)"]];
    for (const [name, points, _] of series) {
      const sorted = points.slice().sort((a, b) => a[x] - b[x]);
      const g = node("g", { class: `series-${name}` });
      g.appendChild(node("polyline", { points: sorted.map(p => `${f(X(p[x]))},${f(Y(p.accuracy))}`).join(" ") }));
      for (const p of sorted) {
        const c = node("circle", { cx: f(X(p[x])), cy: f(Y(p.accuracy)), r: 3.5 });
        c.appendChild(node("title", {}, `${p.variants}: ${p.accuracy.toFixed(3)} at ${p.latency_ms.toFixed(3)} ms, ${p.size_mb.toFixed(3)} MB`));
        g.appendChild(c);
      }
      svg.appendChild(g);
    }
    const legend = series.map(([name, , label]) => [name, label]).concat([["all", "every combination"]]);
    legend.forEach(([name, label], i) => {
      const y = H - BOTTOM - 70 + i * 16;
      const g = node("g", { class: name === "all" ? "all" : `series-${name}` });
      g.appendChild(node("rect", { x: W - RIGHT - 280, y: y - 9, width: 10, height: 10 }));
      svg.appendChild(g);
      svg.appendChild(node("text", { x: W - RIGHT - 265, y }, label));
    });
    return svg;
  }

  return { draw };
})();
