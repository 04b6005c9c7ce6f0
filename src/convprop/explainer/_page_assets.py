"""The stylesheet, SVG patterns and script inlined into every page :mod:`.page` writes.

The script only shows and hides: every number and every equation is already in the
page (the SVG cells, the MathML, and the ``#model`` JSON that :func:`.page.page_model`
produced); it computes no value.  Its state is the step (0 = nothing computed,
``1..F`` the forward pass one output at a time, then the backward pass one term of
∂L/∂k (of ∂L/∂x for pooling), then of ∂L/∂b, at a time, the last step everything) and an
optional selection (hover, or a pinned click).  The transposed convolution also gets its
adjoint view: clicking an input of the ``sx`` grid lights the outputs of the ``sz`` grid it
scatters into.
"""

STYLE = """
:root { --foot: #4C72B0; --foot-bg: #d6e3f5; --term: #C8631E; --term-bg: #fae0cc;
        --pad: #C44E52; --sel: #ffe38a; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1em 1.6em;
       color: #222; background: #fff; }
h1 { font-size: 1.2em; margin: 0 0 .15em; font-weight: 600; }
header p { margin: .15em 0; }
.geometry { color: #444; }
.values.random { background: #fff4d6; border-left: 4px solid #e0a800; padding: .25em .6em;
                 display: inline-block; }
.grids { display: flex; flex-wrap: wrap; gap: 1.4em 2em; align-items: flex-start; margin-top: .8em; }
figure { margin: 0; }
figure.scatter .pair { display: flex; gap: 1.2em; align-items: flex-start; }
figcaption { font-weight: 600; font-size: .92em; margin-bottom: .15em; }
svg.grid { max-width: 100%; height: auto; display: block; }
.cell rect { fill: #fff; stroke: #8a8a8a; stroke-width: 1; }
.cell.pad rect { fill: url(#hatch); }
.cell text { text-anchor: middle; pointer-events: none; }
.cell text.v { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; fill: #222; }
.cell text.v.long { font-size: 10.5px; }
.cell text.tag { font: 10.5px system-ui, sans-serif; fill: #1d3557; }
.cell.pad text.v { fill: #777; }
.idx { font: 10px system-ui, sans-serif; fill: #999; text-anchor: middle; }
.frame { fill: none; stroke: #000; stroke-width: 2; pointer-events: none; }
[data-role=z], [data-role=k], [data-role=g], [data-role=gx], [data-role=gb], [data-role=sx],
g[data-role=x][tabindex] { cursor: pointer; }
.plabel { font: 600 11px system-ui, sans-serif; fill: #333; }
[data-role]:focus { outline: none; }
[data-role]:focus rect { stroke: #000; stroke-width: 2; }
.cell.hl rect { fill: var(--foot-bg); stroke: var(--foot); stroke-width: 2.5; }
.cell.hl-pad rect { fill: url(#hatch-hl); stroke: var(--pad); stroke-width: 2.5;
                    stroke-dasharray: 5 3; }
.mode-k .cell.hl rect, .mode-x .cell.hl rect, .mode-b .cell.hl rect, .mode-s .cell.hl rect {
  fill: var(--term-bg); stroke: var(--term); }
.cell.pick rect { stroke: #2a7d3a; stroke-width: 4; }
mrow.pick { color: #2a7d3a; font-weight: 600; }
.note { color: #444; }
g[data-role=z].hl-pad rect { fill: #fbeeee; }
.cell.sel rect { fill: var(--sel); stroke: #111; stroke-width: 3; }
.cell.cur rect { stroke-width: 4.5; }
.cell.pending rect { fill: #f4f4f4; }
.cell.pending text.v { visibility: hidden; }
.cell.partial text.v { fill: var(--term); font-style: italic; }
.controls { margin: 1em 0 .6em; display: flex; gap: .4em; align-items: center; flex-wrap: wrap; }
.controls button { font-size: 1em; min-width: 2.4em; padding: .15em .4em; cursor: pointer; }
#step { width: min(460px, 50vw); }
#step-label { margin-left: .6em; font-weight: 600; }
.equations { border-top: 1px solid #ddd; padding-top: .4em; overflow-x: auto; min-height: 8em; }
.eq p { margin: .35em 0; }
table.eqn { border-collapse: collapse; }
table.eqn td { padding: .12em .35em; white-space: nowrap; vertical-align: middle; }
table.terms td.src { color: #555; }
math { font-size: 1.12em; }
mrow.pad, tr.vanish { color: #9a9a9a; }
tr.cur { background: var(--term-bg); }
tr.total td { border-top: 1px solid #999; font-weight: 600; }
.why { color: var(--pad); font-size: .85em; }
.running { font-weight: 600; color: var(--term); }
.check { color: #555; font-size: .9em; }
"""

PATTERNS = """<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>
<pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="7" height="7" fill="#ececec"/><line x1="0" y1="0" x2="0" y2="7" stroke="#c4c4c4"
 stroke-width="3"/></pattern>
<pattern id="hatch-hl" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="7" height="7" fill="#f6dede"/><line x1="0" y1="0" x2="0" y2="7" stroke="#e3a3a5"
 stroke-width="3"/></pattern></defs></svg>"""

SCRIPT = r"""
(() => {
"use strict";
const M = JSON.parse(document.getElementById("model").textContent);
const FWD = M.steps.forward, BWD = M.steps.backward, LAST = FWD + BWD + 1, PLAN = M.steps.plan;
const cells = role => Array.from(document.querySelectorAll(`g[data-role="${role}"]`));
const X = cells("x"), K = cells("k"), Z = cells("z"), G = cells("g"), GX = cells("gx");
const GB = cells("gb"), SX = cells("sx"), SZ = cells("sz");
const xAt = new Map(X.map(el => [el.dataset.at, el]));
const key = c => c.join(",");
const SUB = "₀₁₂₃₄₅₆₇₈₉";
const sub = (name, c) => name + c.map(p => String(p).replace(/[0-9]/g, d => SUB[+d])).join(",");
const slider = document.getElementById("step"), label = document.getElementById("step-label");
const play = document.getElementById("play");
// each gradient grid: its model entries, its cells, the name of its variable
const GRAD = { k: { list: M.k, els: G, name: "k" }, x: { list: M.gx, els: GX, name: "x" },
               b: { list: M.gb, els: GB, name: "b" } };
let step = LAST, pinned = null, hover = null, timer = null;

function tag(el, text) { el.querySelector(".tag").textContent = text; }

function setValue(el, text) {
  const v = el.querySelector(".v");
  v.textContent = text;
  v.classList.toggle("long", text.length > 8);
}

function reset() {
  document.body.classList.remove("mode-z", "mode-k", "mode-x", "mode-b", "mode-s");
  for (const el of [...X, ...K, ...Z, ...G, ...GX, ...GB, ...SX, ...SZ]) {
    el.classList.remove("hl", "hl-pad", "sel", "cur", "pending", "partial", "pick");
    tag(el, "");
  }
  G.forEach((el, a) => setValue(el, M.k[a].grad_text));
  GX.forEach((el, a) => setValue(el, M.gx[a].grad_text));
  GB.forEach((el, a) => setValue(el, M.gb[a].grad_text));
  document.querySelectorAll(".eq").forEach(e => { e.hidden = true; });
}

function showEq(id) { const e = document.getElementById(id); e.hidden = false; return e; }

function selectZ(n) {
  document.body.classList.add("mode-z");
  Z[n].classList.add("sel");
  for (const w of M.z[n].window) {
    const el = xAt.get(key(w.at));
    el.classList.add(w.input ? "hl" : "hl-pad");
    if (w.pick) el.classList.add("pick");
    if (w.ki !== null) { K[w.ki].classList.add("hl"); tag(el, sub("k", w.kernel)); }
  }
  showEq("eq-z-" + n);
}

// the transposed convolution's adjoint view: input n scatters x·k/D into its targets
function selectScatter(n) {
  document.body.classList.add("mode-s");
  SX[n].classList.add("sel");
  for (const t of M.scatter[n].targets) {
    SZ[t.zi].classList.add("hl");
    tag(SZ[t.zi], sub("k", t.kernel));
    K[t.ki].classList.add("hl");
  }
  showEq("eq-s-" + n);
}

// the terms of one gradient; upto: the backward step's current term (undefined: all of them)
function selectGrad(kind, a, upto) {
  document.body.classList.add("mode-" + kind);
  const entry = GRAD[kind].list[a];
  GRAD[kind].els[a].classList.add("sel");
  if (kind === "k") K[a].classList.add("sel");
  else if (kind === "x") X[entry.xi].classList.add("sel");
  const terms = entry.terms, last = upto === undefined ? terms.length - 1 : upto;
  terms.forEach((t, b) => {
    if (b > last) return;
    const els = [];
    if (kind === "k") {
      els.push(Z[t.zi], xAt.get(key(t.at)));
      tag(els[1], sub("z", t.output));
    } else if (kind === "b") {
      els.push(Z[t.zi]);
    } else if (t.zi !== null) {
      els.push(Z[t.zi]);
      if (t.ki !== null) { els.push(K[t.ki]); tag(Z[t.zi], sub("k", t.kernel)); }
      if (M.shape.op === "maxpool" && t.dz_dx === 1) Z[t.zi].classList.add("pick");
    }
    const live = kind === "k" ? t.input !== null : kind === "b" || t.zi !== null;
    for (const el of els) {
      el.classList.add(live ? "hl" : "hl-pad");
      if (b === upto) el.classList.add("cur");
    }
  });
  const eq = showEq(`eq-${kind}-${a}`);
  eq.querySelectorAll("tr.term").forEach((tr, b) => {
    tr.hidden = b > last;
    tr.classList.toggle("cur", b === upto);
  });
  eq.querySelector("tr.total").hidden = last < terms.length - 1;
  const run = eq.querySelector(".running");
  run.hidden = upto === undefined;
  if (upto !== undefined) {
    run.textContent = `running sum after ${upto + 1} of ${terms.length} terms: ` +
      terms[upto].running_text;
  }
}

function render() {
  reset();
  const sel = hover || pinned;
  if (sel) {
    if (sel.kind === "z") selectZ(sel.n);
    else if (sel.kind === "s") selectScatter(sel.n);
    else selectGrad(sel.kind, sel.n);
    const c = sel.kind === "z" ? M.z[sel.n].cell :
      sel.kind === "s" ? M.scatter[sel.n].cell : GRAD[sel.kind].list[sel.n].cell;
    label.textContent = (sel.kind === "z" ? sub("z", c) : sel.kind === "s" ?
      sub("x", c) + " scatters into " + M.scatter[sel.n].targets.length + " outputs" :
      "∂L/∂" + sub(sel.kind, c)) +
      (pinned && !hover ? " (pinned: Esc or a step clears it)" : "");
  } else if (step === 0) {
    [...Z, ...G, ...GX, ...GB].forEach(el => el.classList.add("pending"));
    showEq("eq-hint");
    label.textContent = `step 0 of ${LAST}: nothing computed yet`;
  } else if (step <= FWD) {
    const n = step - 1;
    selectZ(n);
    Z.forEach((el, i) => { if (i > n) el.classList.add("pending"); });
    [...G, ...GX, ...GB].forEach(el => el.classList.add("pending"));
    label.textContent = `step ${step} of ${LAST}, forward: ` + sub("z", M.z[n].cell) +
      ` (${step} of ${FWD} outputs)`;
  } else if (step <= FWD + BWD) {
    const [kind, a, b] = PLAN[step - FWD - 1], grad = GRAD[kind], terms = grad.list[a].terms;
    selectGrad(kind, a, b);
    // gradients the plan reaches later (or never: ∂L/∂X of a convolution) are not yet shown
    const order = PLAN.map(p => p[0]).filter((g, i, all) => all.indexOf(g) === i);
    for (const [other, g] of Object.entries(GRAD)) {
      if (other !== kind && (order.indexOf(other) < 0 || order.indexOf(other) > order.indexOf(kind)))
        g.els.forEach(el => el.classList.add("pending"));
    }
    grad.els.forEach((el, i) => {
      if (i > a) el.classList.add("pending");
      if (i === a && b < terms.length - 1) {
        el.classList.add("partial");
        setValue(el, terms[b].running_text);
      }
    });
    const t = terms[b], from = t.output ? " (" + sub("z", t.output) + ")" : " (a zero)";
    label.textContent = `step ${step} of ${LAST}, backward: ∂L/∂` + sub(grad.name, grad.list[a].cell) +
      `, term ${b + 1} of ${terms.length}` + from;
  } else {
    showEq("eq-hint");
    label.textContent = `step ${LAST} of ${LAST}: everything computed`;
  }
  slider.value = String(step);
}

function go(s) {
  step = Math.max(0, Math.min(LAST, s));
  pinned = null;
  hover = null;
  render();
}

function stop() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  play.textContent = "play";
}

function tick() {
  if (step >= LAST) { stop(); return; }
  go(step + 1);
  timer = setTimeout(tick, step <= FWD ? 700 : 350);
}

function toggle() {
  if (timer !== null) { stop(); return; }
  if (step >= LAST) go(0);
  play.textContent = "pause";
  timer = setTimeout(tick, 300);
}

const realX = M.gx.map(e => X[e.xi]);
for (const [els, kind] of [[Z, "z"], [K, "k"], [G, "k"], [realX, "x"], [GX, "x"], [GB, "b"],
                           [SX, "s"]]) {
  els.forEach((el, n) => {
    el.addEventListener("mouseenter", () => { hover = { kind, n }; render(); });
    el.addEventListener("mouseleave", () => { hover = null; render(); });
    el.addEventListener("click", () => {
      stop();
      const same = pinned && pinned.kind === kind && pinned.n === n;
      pinned = same ? null : { kind, n };
      if (same) hover = null;
      render();
    });
    el.addEventListener("keydown", e => {
      if (e.key === "Enter") { e.preventDefault(); el.dispatchEvent(new MouseEvent("click")); }
    });
  });
}

document.getElementById("first").addEventListener("click", () => { stop(); go(0); });
document.getElementById("prev").addEventListener("click", () => { stop(); go(step - 1); });
document.getElementById("next").addEventListener("click", () => { stop(); go(step + 1); });
document.getElementById("last").addEventListener("click", () => { stop(); go(LAST); });
play.addEventListener("click", toggle);
slider.addEventListener("input", () => { stop(); go(Number(slider.value)); });

document.addEventListener("keydown", e => {
  if (e.target === slider || e.altKey || e.ctrlKey || e.metaKey) return;
  const moves = { ArrowRight: step + 1, ArrowLeft: step - 1, Home: 0, End: LAST };
  if (e.key in moves) { e.preventDefault(); stop(); go(moves[e.key]); }
  else if (e.key === " " && e.target.tagName !== "BUTTON") { e.preventDefault(); toggle(); }
  else if (e.key === "Escape") { pinned = null; hover = null; render(); }
});

render();
})();
"""
