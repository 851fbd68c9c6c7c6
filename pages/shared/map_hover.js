// Client side of pages/shared/map_hover.py (read its docstring). Hooks every Plotly chart of the page once, sends
// the hovered point's row to Python, and shows the thumbnail that comes back at the pointer. Text goes through
// textContent and only data:image URLs reach img.src.

const DEBOUNCE_MS = 60;
const CACHE = 300; // thumbnails kept in the browser, so a point hovered again shows at once
const THUMB = /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/]+={0,2}$/;
const instances = new WeakMap();
let latest = null; // the component that rendered last gets the hovers

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let panel = instances.get(parentElement);
  if (!panel) {
    panel = createPanel(parentElement);
    instances.set(parentElement, panel);
  }
  panel.send = setStateValue;
  panel.update(data || {});
  latest = panel;
  hookCharts();
}

function onHover(event) {
  if (latest && latest.box.isConnected) latest.hover(event);
}

function onUnhover() {
  if (latest) latest.hide();
}

function hookCharts() {
  // Plotly drops every listener when it draws a chart anew, so each look takes ours off and puts it back: exactly
  // one of each, however often this runs.
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    if (typeof gd.on !== "function" || typeof gd.removeListener !== "function") continue;
    gd.removeListener("plotly_hover", onHover);
    gd.removeListener("plotly_unhover", onUnhover);
    gd.on("plotly_hover", onHover);
    gd.on("plotly_unhover", onUnhover);
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
