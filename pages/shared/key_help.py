"""The keyboard help of the pages without a labeling widget: ``?`` shows the page's keys, ``?`` or Esc hides them,
and a key that does nothing on the page says so (rather than nothing at all).

A tiny ``st.components.v2`` component (Streamlit's own shortcuts accept letters and digits only, not ``?``). The
Label and Review pages' labeling views do not use it: their keyboard widget has its own ``?`` panel and answers
every key itself. All text goes through ``textContent``.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

_HTML = """
<div class="kh" data-kh="root">
  <p class="kh-hint">Press <kbd>?</kbd> for this page's keys.</p>
  <p class="kh-said" data-kh="said" aria-live="polite"></p>
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
.kh-said { color: var(--st-red-color, #bd4043); }
.kh dl { display: grid; grid-template-columns: auto 1fr; gap: 0.15rem 0.6rem; margin: 0.3rem 0; }
.kh dd { margin: 0; }
.kh kbd { font-family: var(--st-code-font, monospace); padding: 0 0.3rem; border-radius: 0.25rem;
  border: 1px solid var(--st-border-color, #d5dae5); }
[hidden] { display: none !important; }
"""

_JS = """
const panels = new WeakMap();
let current = null;
let said = null;
let silent = "";
let known = new Set();
let sayTimer = null;
const TYPING = /^(INPUT|TEXTAREA|SELECT)$/;
// Streamlit's own keys: r reruns the page, c clears the caches; they do something.
const STREAMLIT_KEYS = new Set(["r", "c"]);

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
  said = $("said");
  silent = data.silent || "";
  known = new Set((data.keys || []).map(([key]) => String(key).toLowerCase()));
  if (!panels.has(document)) {
    panels.set(document, true);
    document.addEventListener("keydown", (event) => {
      const active = document.activeElement;
      if (!current || !current.isConnected || event.ctrlKey || event.metaKey || event.altKey) return;
      if (active && (TYPING.test(active.tagName) || active.isContentEditable)) return;
      if (document.querySelector("[data-kl='root']")) return; // a labeling widget has its own help
      if (event.key === "?") { current.hidden = !current.hidden; event.preventDefault(); }
      else if (event.key === "Escape") current.hidden = true;
      else if (event.key.length === 1 && event.key !== " " && said && said.isConnected && silent) {
        const key = event.key.toLowerCase();
        if (known.has(key) || STREAMLIT_KEYS.has(key)) return;
        said.textContent = `“${event.key}” ${silent}`; // a key that does nothing here says so
        clearTimeout(sayTimer);
        sayTimer = setTimeout(() => { if (said) said.textContent = ""; }, 5000);
      }
    });
  }
}
"""

_render = st.components.v2.component("labeler.key_help", html=_HTML, css=_CSS, js=_JS)


def silent_key_text(keys: Sequence[tuple[str, str]]) -> str:
    """What a key that is not among ``keys`` says, after the key itself (e.g. ``"3" does nothing on this page…``)."""
    if keys:
        return "does nothing on this page: press ? for its keys."
    return "does nothing on this page (it has no keys): class keys label images on Label and Review & audit."


def key_help(title: str, keys: Sequence[tuple[str, str]], note: str = "", *, key: str = "key_help",
             silent: str | None = None) -> None:
    """Draw the hint and the (hidden) panel listing ``keys`` as (key, what it does); a key pressed on the page that
    is none of them (nor ``?``, Esc, or Streamlit's own ``r`` and ``c``) shows ``silent`` (default:
    :func:`silent_key_text`) after the key, for a while."""
    _render(key=key, data={"title": title, "keys": [list(pair) for pair in keys], "note": note,
                           "silent": silent_key_text(keys) if silent is None else silent})


def no_keys_here(title: str, why: str) -> None:
    """In the sidebar, the key help of a labeling page that shows no labeling widget now (nothing to label yet or
    left, or a view without keys): any key pressed says ``why`` rather than nothing."""
    with st.sidebar:
        key_help(title, [], f"No keys here now: {why}", silent=f"does nothing now: {why}")
