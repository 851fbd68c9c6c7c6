// Client side of pages/shared/map_hover.py (read its docstring). Hooks every Plotly chart of the page once, sends
// the hovered point's row to Python, and shows the thumbnail that comes back at the pointer. Text goes through
// textContent and only data:image URLs reach img.src.

const DEBOUNCE_MS = 60;
const CACHE = 300; // thumbnails kept in the browser, so a point hovered again shows at once
const THUMB = /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/]+={0,2}$/;
const instances = new WeakMap();
let latest = null; // the component that rendered last gets the hovers
let chartKey = null; // the key of the map's st.plotly_chart: only that chart is hooked, whatever page is on

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let panel = instances.get(parentElement);
  if (!panel) {
    panel = createPanel(parentElement);
    instances.set(parentElement, panel);
  }
  panel.send = setStateValue;
  panel.update(data || {});
  if (data && typeof data.chart === "string" && /^[A-Za-z0-9_-]+$/.test(data.chart)) chartKey = data.chart;
  latest = panel;
  hookCharts();
}

// The panel goes while a lasso, a box or a pan is drawn (plotly sends no unhover then) and once the pointer is off
// the chart, however it left; a hover that plotly throttled and sends late, after either, is ignored.
const DRAG_PX = 4; // a press that moves farther than this is a drag (lasso, box, pan), not a click
let pressed = null; // where the button went down on a chart, while it is down
let dragging = false;
let over = null; // the chart under the pointer: plotly may send a hover it throttled after the pointer left

function onHover(event) {
  if (over && !dragging && latest && latest.box.isConnected) latest.hover(event);
}

function onEnter(event) {
  over = event.currentTarget;
}

function onLeave() {
  over = null;
  hide();
}

function hide() {
  if (latest) latest.hide();
}

function onPress(event) {
  const target = event.target;
  pressed = { x: event.clientX, y: event.clientY, chart: event.currentTarget,
              // plotly's drag layer over the plot area (not the legend, an axis or the toolbar)
              inPlot: Boolean(target && target.classList && target.classList.contains("nsewdrag")) };
}
window.addEventListener("pointermove", (event) => {
  if (pressed && !dragging && Math.hypot(event.clientX - pressed.x, event.clientY - pressed.y) > DRAG_PX) {
    dragging = true;
    hide();
  }
}, true);
window.addEventListener("pointerup", (event) => {
  if (pressed && !dragging && pressed.inPlot && event.button === 0) selectNearest(pressed.chart, event);
  pressed = null;
  dragging = false;
}, true);

// A click in the plot area selects the point nearest the pointer, as one selection Streamlit reports like any other.
// Not plotly's own click-to-select, nor its click event: both take the point of plotly's last hover, which it
// throttles (50 ms), so a click right after a move picked the point under an earlier position of the pointer (a
// point of another cluster, in tests/e2e/test_map_browser.py). So plotly neither selects nor reports clicks here,
// a drawn lasso's outline lets them through, and the point is found from the pointer itself, within the figure's
// hoverdistance (-1: anywhere) as plotly's hover would. (``_fullLayout``, ``_offset`` and ``_noEmitSelectedAtStart``
// are plotly internals: tests/e2e/test_map_browser.py fails if a plotly changes them.)
function clicksIgnored(gd) {
  const layout = gd._fullLayout;
  if (layout && typeof layout.clickmode === "string" && layout.clickmode !== "none") layout.clickmode = "none";
}

function clearOutline(gd) {
  // The old lasso's outline would stay drawn around points no longer selected: take it away without a new
  // selection event (plotly's own flag for this), so the clicked point stays the selection.
  const plotly = window.Plotly;
  if (gd.layout && (gd.layout.selections || []).length && plotly && typeof plotly.relayout === "function") {
    gd._fullLayout._noEmitSelectedAtStart = true;
    plotly.relayout(gd, { selections: [] });
  }
}

function nearestPoint(gd, clientX, clientY) {
  const layout = gd._fullLayout, xa = layout && layout.xaxis, ya = layout && layout.yaxis;
  if (!xa || !ya || typeof xa.c2p !== "function" || typeof ya.c2p !== "function") return null;
  const box = gd.getBoundingClientRect();
  const px = clientX - box.left - xa._offset, py = clientY - box.top - ya._offset;
  const reach = Number(layout.hoverdistance);
  let best = null, bestDistance = reach >= 0 ? reach : Infinity;
  for (const trace of gd._fullData || []) {
    // Not the points plotly's hover skips (those a filter leaves out, drawn grey as context).
    if (trace.visible !== true || trace.hoverinfo === "skip" || !trace.customdata || !trace.x || !trace.y) continue;
    for (let i = 0; i < trace.x.length; i++) {
      const distance = Math.hypot(xa.c2p(trace.x[i]) - px, ya.c2p(trace.y[i]) - py);
      if (distance <= bestDistance) { bestDistance = distance; best = { trace, i }; }
    }
  }
  return best;
}

function selectNearest(gd, event) {
  const found = gd && nearestPoint(gd, event.clientX, event.clientY);
  if (!found || typeof gd.emit !== "function") return;
  const { trace, i } = found, curve = trace.index;
  clearOutline(gd);
  const plotly = window.Plotly;
  if (plotly && typeof plotly.restyle === "function") {
    // Drawn as plotly draws its own selection: the clicked point, the rest dimmed.
    plotly.restyle(gd, { selectedpoints: (gd.data || []).map((_, k) => (k === curve ? [i] : [])) });
  }
  // The fields a lasso's points carry, which is what Streamlit reports.
  const point = { curveNumber: curve, pointNumber: i, pointIndex: i, x: trace.x[i], y: trace.y[i],
                  customdata: trace.customdata[i], data: (gd.data || [])[curve], fullData: trace };
  gd.emit("plotly_selected", { points: [point], selections: [] });
}

const hooks = new WeakMap(); // chart -> its own listeners, so that each is added exactly once

function listenersOf(gd) {
  let found = hooks.get(gd);
  if (!found) {
    found = { plotly_hover: onHover, plotly_unhover: hide, plotly_selecting: hide, plotly_relayouting: hide,
              plotly_afterplot: () => clicksIgnored(gd) };
    hooks.set(gd, found);
  }
  return found;
}

function hookCharts() {
  // Plotly drops every listener when it draws a chart anew, so each look takes ours off and puts it back: exactly
  // one of each, however often this runs (and a DOM listener added twice is there once).
  if (!chartKey) return;
  for (const gd of document.querySelectorAll(`.st-key-${chartKey} .js-plotly-plot`)) {
    if (typeof gd.on !== "function" || typeof gd.removeListener !== "function") continue;
    for (const [name, listener] of Object.entries(listenersOf(gd))) {
      gd.removeListener(name, listener);
      gd.on(name, listener);
    }
    gd.addEventListener("pointerdown", onPress, true);
    gd.addEventListener("pointerover", onEnter);
    gd.addEventListener("pointerleave", onLeave);
    gd.classList.add("mh-map");
    clicksIgnored(gd);
  }
  if (!document.getElementById("mh-style")) {
    const style = document.createElement("style");
    style.id = "mh-style";
    style.textContent = ".mh-map .selectionlayer path { pointer-events: none !important; }";
    document.head.appendChild(style);
  }
}
// The chart may be drawn, or drawn again, after this component: look again now and then.
setInterval(hookCharts, 500);

function createPanel(host) {
  const $ = (name) => host.querySelector(`[data-mh="${name}"]`);
  const p = { box: $("box"), image: $("image"), caption: $("caption"), cache: new Map(), row: null, x: 0, y: 0,
              timer: 0, send: null, version: null };

  function place() {
    const width = p.box.offsetWidth || 150, height = p.box.offsetHeight || 170;
    const left = p.x + 16 + width > window.innerWidth ? p.x - 16 - width : p.x + 16;
    const top = Math.min(Math.max(p.y - height / 2, 4), window.innerHeight - height - 4);
    p.box.style.left = `${Math.max(left, 4)}px`;
    p.box.style.top = `${top}px`;
  }

  function show() {
    const found = p.cache.get(p.row);
    if (!found) return;
    if (p.image.getAttribute("src") !== found.thumb) p.image.src = found.thumb;
    p.caption.textContent = found.caption;
    p.box.dataset.row = String(p.row);
    p.box.hidden = false;
    place();
  }

  p.hover = (event) => {
    const point = event && event.points && event.points[0];
    const data = point ? point.customdata : null;
    const row = Number(Array.isArray(data) || ArrayBuffer.isView(data) ? data[0] : data); // a typed array row
    if (!Number.isInteger(row) || row < 0) return;
    if (event.event) { p.x = event.event.clientX; p.y = event.event.clientY; }
    p.row = row;
    if (p.cache.has(row)) { show(); return; }
    p.box.hidden = true;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => { if (p.row === row && p.send) p.send("hover", row); }, DEBOUNCE_MS);
  };

  p.hide = () => {
    clearTimeout(p.timer);
    p.row = null;
    p.box.hidden = true;
  };

  p.update = (data) => {
    if (data.version !== p.version) { p.cache.clear(); p.version = data.version; }
    const row = data.row;
    if (Number.isInteger(row) && typeof data.thumb === "string" && THUMB.test(data.thumb)) {
      p.cache.delete(row);
      p.cache.set(row, { thumb: data.thumb, caption: String(data.caption || "") });
      if (p.cache.size > CACHE) p.cache.delete(p.cache.keys().next().value);
    }
    if (p.row !== null && p.row === row) show();
  };
  return p;
}
