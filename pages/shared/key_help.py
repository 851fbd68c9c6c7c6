"""The keyboard help of the pages without a labeling widget: ``?`` shows the page's keys, ``?`` or Esc hides them.

A tiny ``st.components.v2`` component (Streamlit's own shortcuts accept letters and digits only, not ``?``). The
Label and Review pages do not use it: their keyboard widget has its own ``?`` panel. All text goes through
``textContent``.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

_HTML = """
<div class="kh" data-kh="root">
  <p class="kh-hint">Press <kbd>?</kbd> for this page's keys.</p>
  <div class="kh-panel" data-kh="panel" hidden>
    <p class="kh-title" data-kh="title"></p>
    <dl data-kh="list"></dl>
    <p class="kh-note" data-kh="note"></p>
  </div>
</div>
"""

_CSS = """
.kh { font-family: var(--st-font, sans-serif); font-size: 0.8rem; color: var(--st-text-color, #31333f); }
.kh p { margin: 0; }
.kh-hint { opacity: 0.7; }
.kh-panel { margin-top: 0.4rem; padding: 0.5rem; border: 1px solid var(--st-border-color, #d5dae5);
  border-radius: 0.4rem; background: var(--st-background-color, #fff); }
.kh-title { font-weight: 600; }
.kh dl { display: grid; grid-template-columns: auto 1fr; gap: 0.15rem 0.6rem; margin: 0.3rem 0; }
.kh dd { margin: 0; }
.kh kbd { font-family: var(--st-code-font, monospace); padding: 0 0.3rem; border-radius: 0.25rem;
  border: 1px solid var(--st-border-color, #d5dae5); }
[hidden] { display: none !important; }
"""

_JS = """
const panels = new WeakMap();
let current = null;
const TYPING = /^(INPUT|TEXTAREA|SELECT)$/;

export default function (component) {
  const { data, parentElement } = component;
  const $ = (name) => parentElement.querySelector(`[data-kh="${name}"]`);
  const panel = $("panel");
  $("title").textContent = data.title || "Keys";
  $("note").textContent = data.note || "";
  const list = $("list");
  list.replaceChildren();
  for (const [key, text] of data.keys || []) {
    const dt = document.createElement("dt");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    dt.append(kbd);
    const dd = document.createElement("dd");
    dd.textContent = text;
    list.append(dt, dd);
  }
  current = panel;
  if (!panels.has(document)) {
    panels.set(document, true);
    document.addEventListener("keydown", (event) => {
      const active = document.activeElement;
      if (!current || !current.isConnected || event.ctrlKey || event.metaKey || event.altKey) return;
      if (active && (TYPING.test(active.tagName) || active.isContentEditable)) return;
      if (document.querySelector("[data-kl='root']")) return; // a labeling widget has its own help
      if (event.key === "?") { current.hidden = !current.hidden; event.preventDefault(); }
      else if (event.key === "Escape") current.hidden = true;
    });
  }
}
"""

_render = st.components.v2.component("labeler.key_help", html=_HTML, css=_CSS, js=_JS)


def key_help(title: str, keys: Sequence[tuple[str, str]], note: str = "", *, key: str = "key_help") -> None:
    """Draw the hint and the (hidden) panel listing ``keys`` as (key, what it does)."""
    _render(key=key, data={"title": title, "keys": [list(pair) for pair in keys], "note": note})
