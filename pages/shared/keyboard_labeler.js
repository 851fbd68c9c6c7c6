// Client-side loop of pages/shared/keyboard_labeler.py (read its docstring for the contract).
//
// A press labels the item on screen and shows the next prefetched one at once. Every action becomes an event
// {seq, image_id, action, label}; the whole list of events Python has not acknowledged yet is sent as the
// "outbox" state, so a rerun that misses one update still receives every press, and Python applies each seq once.
// Presses made while no item is left wait, in order, for the next items Python sends (never the previous one).
// Streamlit calls this function again with new data on every rerun; the instance lives on in `instances`.
// All user text goes through textContent; thumbnails only ever reach img.src.

const instances = new WeakMap();
let latest = null; // the widget that rendered last: it gets keys typed while no control has the focus
const RESEND_MS = 3000;
const HISTORY = 500;
const NEXT_SHOWN = 4;
const UNDOING = "Undoing your last label on this page…";
const UNDO_ANSWERED = "Undo answered: the page's note says what it took back, or that there was nothing.";
const TEXT_INPUTS = /^(text|search|email|number|password|tel|url|date|datetime-local|month|time|week)$/;

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let widget = instances.get(parentElement);
  if (!widget) {
    widget = createWidget(parentElement);
    instances.set(parentElement, widget);
  }
  widget.send = setStateValue;
  widget.update(data || {});
  latest = widget;
}

document.addEventListener("keydown", (event) => {
  const active = document.activeElement; // Streamlit's scrollable <main> takes the focus on a click on the page
  const idle = !active || active === document.body || active.tagName === "MAIN" || active.tagName === "SECTION";
  if (idle && latest && latest.autofocus && latest.root.isConnected) latest.onKey(event);
});

window.addEventListener("beforeunload", (event) => {
  if (latest && latest.root.isConnected && latest.pending.length) event.preventDefault(); // "Leave site?"
});

function createWidget(host) {
  const $ = (name) => host.querySelector(`[data-kl="${name}"]`);
  const root = $("root");
  const image = $("image");
  const view = {
    caption: $("caption"), waiting: $("waiting"), next: $("next"), classes: $("classes"), message: $("message"),
    status: $("status"), help: $("help"), helpList: $("help-list"),
  };
  const w = {
    stream: Math.random().toString(36).slice(2) + Date.now().toString(36),
    seq: 0, acked: 0, reflected: 0, pending: [], queue: [], acted: new Map(), history: [], waiting: [],
    classes: [], keys: new Map(), classesSig: "", autofocus: true, undoEarlier: false, undoEarlierSeq: 0, accept: "", done: false,
    send: null,
    timer: 0, tries: 0,
    messageTimer: 0,
  };

  // The accept class stands for the item's proposal: "→ cat (accepted)", not the button's name.
  const accepted = (entry) => (entry.action === "label" && w.accept !== "" && entry.label === w.accept
    && entry.item && entry.item.proposal ? entry.item.proposal : "");
  const actionText = (entry) => {
    if (entry.action === "skip") return "skipped";
    return accepted(entry) ? `${accepted(entry)} (accepted)` : entry.label;
  };
  const undoneText = (entry) => (accepted(entry) ? `accepted ${accepted(entry)}` : actionText(entry));

  function say(text, warn = false) {
    view.message.textContent = text;
    view.message.classList.toggle("kl-warn", warn);
    clearTimeout(w.messageTimer);
    if (warn) w.messageTimer = setTimeout(() => { view.message.textContent = ""; }, 5000);
  }

  function flush() {
    if (w.send) w.send("outbox", { stream: w.stream, events: w.pending.slice() });
  }

  function emit(imageId, action, label) {
    w.seq += 1;
    w.pending.push({ seq: w.seq, image_id: imageId, action, label });
    flush();
    return w.seq;
  }

  function record(entry) {
    w.acted.set(entry.item.id, emit(entry.item.id, entry.action, entry.label));
    say(`${entry.item.name || entry.item.caption || entry.item.id} → ${actionText(entry)}`);
  }

  function act(action, label = null) {
    if (!w.queue.length && !w.pending.length && w.done) {
      say("Nothing left to label.", true);
      return;
    }
    const entry = { action, label, item: null };
    w.history.push(entry);
    if (w.history.length > HISTORY) w.history.shift();
    if (w.queue.length) {
      entry.item = w.queue.shift();
      record(entry);
    } else {
      w.waiting.push(entry);
      say(`Catching up… this press goes to the next image.`);
    }
    render();
  }

  function undo() {
    const entry = w.history.pop();
    if (!entry && w.undoEarlier) {
      // The page knows its earlier labels (before a reload, a grid click); it says which, or that there is none.
      w.undoEarlierSeq = emit("", "undo", null);
      say(UNDOING);
    } else if (!entry) {
      say("Nothing to undo here.", true);
    } else if (!entry.item) {
      w.waiting.pop();
      say(`Removed a waiting press (${actionText(entry)}).`);
    } else {
      const item = entry.item;
      item.reopened = emit(item.id, "undo", null);
      w.acted.delete(item.id);
      w.queue = [item, ...w.queue.filter((other) => other.id !== item.id)];
      say(`Undone: ${item.name || item.caption || item.id} (${undoneText(entry)}).`);
    }
    render();
  }

  function toggleHelp(show = view.help.hidden) {
    view.help.hidden = !show;
  }

  function grabFocus(force) {
    if (!force && !w.autofocus) return;
    const active = document.activeElement;
    const typing = active && (active.isContentEditable || active.tagName === "TEXTAREA" || active.tagName === "SELECT"
      || (active.tagName === "INPUT" && TEXT_INPUTS.test(active.type)));
    if (force || !typing) root.focus({ preventScroll: true });
  }

  function button(text, key, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "kl-class";
    const name = document.createElement("span");
    name.textContent = text;
    b.append(name);
    if (key) {
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      b.append(kbd);
    }
    b.addEventListener("click", () => { onClick(); grabFocus(true); });
    return b;
  }

  function helpRow(key, text) {
    const dt = document.createElement("dt");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    dt.append(kbd);
    const dd = document.createElement("dd");
    dd.textContent = text;
    view.helpList.append(dt, dd);
  }

  function setClasses(classes) {
    const sig = JSON.stringify(classes);
    if (sig === w.classesSig) return;
    w.classesSig = sig;
    w.classes = classes;
    w.keys = new Map(classes.filter((c) => c.key).map((c) => [c.key, c]));
    view.classes.replaceChildren();
    view.helpList.replaceChildren();
    for (const c of classes) {
      const b = button(c.name, c.key, () => act("label", c.name));
      const swatch = document.createElement("span");
      swatch.className = "kl-swatch";
      swatch.style.background = c.colour;
      b.prepend(swatch);
      view.classes.append(b);
      if (c.key) helpRow(c.key, c.name);
    }
    helpRow("s", "skip this image");
    helpRow("u", "undo the last press");
    helpRow("?", "show or hide these keys");
    helpRow("Esc", "hide these keys");
  }

  function render() {
    const item = w.queue[0];
    image.hidden = !item;
    view.waiting.hidden = Boolean(item);
    if (item) {
      if (image.dataset.id !== item.id) {
        image.src = item.thumbnail;
        image.dataset.id = item.id;
      }
      image.alt = item.caption || item.id;
      view.caption.textContent = item.caption || item.id;
    } else {
      image.removeAttribute("src");
      image.dataset.id = "";
      view.caption.textContent = "";
      view.waiting.textContent = w.done && !w.waiting.length ? "Nothing left to label." : "Catching up…";
    }
    view.next.replaceChildren(...w.queue.slice(1, 1 + NEXT_SHOWN).map((next) => {
      const thumb = document.createElement("img");
      thumb.src = next.thumbnail;
      thumb.alt = next.caption || next.id;
      thumb.title = next.caption || next.id;
      return thumb;
    }));
    const parts = [];
    if (w.pending.length) parts.push(`Saving ${w.pending.length}…`);
    else if (w.seq) parts.push("All saved.");
    const n = w.waiting.length;
    if (n) parts.push(`${n} press${n > 1 ? "es" : ""} waiting for images.`);
    view.status.textContent = parts.join(" ");
    root.dataset.pending = String(w.pending.length);
    root.dataset.waiting = String(w.waiting.length);
  }

  function onKey(event) {
    // Characters and Esc are ours; arrows, Tab, Enter, shortcuts with modifiers keep their usual meaning.
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key.length !== 1 && event.key !== "Escape") return;
    if (event.key === " " && event.target !== root) return; // a focused button's own key
    event.stopPropagation(); // Streamlit's own shortcuts (rerun, clear cache) must not fire while labeling
    event.preventDefault();
    if (event.repeat) return; // a held key labels one image, not a run of them
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    grabFocus(true);
    const cls = w.keys.get(key);
    if (cls) act("label", cls.name);
    else if (key === "s") act("skip");
    else if (key === "u") undo();
    else if (key === "?") toggleHelp();
    else if (key === "Escape") toggleHelp(false);
    else say(`“${key === " " ? "Space" : key}” is not a key for any class here. Press ? to list the keys.`, true);
  }

  w.root = root;
  w.onKey = onKey;
  root.addEventListener("keydown", onKey);
  $("skip").addEventListener("click", () => { act("skip"); grabFocus(true); });
  $("undo").addEventListener("click", () => { undo(); grabFocus(true); });
  $("help-toggle").addEventListener("click", () => { toggleHelp(); grabFocus(true); });
  root.addEventListener("click", (event) => { if (event.target === root || event.target === image) grabFocus(true); });

  w.update = (data) => {
    const ack = data.ack || {};
    if (ack.stream === w.stream) {
      w.acked = Math.max(w.acked, Number(ack.seq) || 0);
      w.reflected = Math.max(w.reflected, Number(ack.reflected) || 0);
    }
    w.pending = w.pending.filter((e) => e.seq > w.acked);
    for (const [id, seq] of w.acted) if (seq <= w.reflected) w.acted.delete(id); // Python's items now know
    if (w.undoEarlierSeq && w.undoEarlierSeq <= w.reflected) {
      // The page has answered (in a note): "Undoing…" must not stay as if still waiting.
      w.undoEarlierSeq = 0;
      if (view.message.textContent === UNDOING) say(UNDO_ANSWERED);
    }
    w.autofocus = data.autofocus !== false;
    w.undoEarlier = data.undo_earlier === true;
    w.accept = typeof data.accept === "string" ? data.accept : "";
    root.style.setProperty("--kl-size", `${Number(data.image_px) || 240}px`);
    setClasses(data.classes || []);
    const incoming = (data.items || []).filter((item) => !w.acted.has(item.id));
    const current = w.queue[0];
    const keep = current && ((current.reopened || 0) > w.reflected || incoming.some((i) => i.id === current.id));
    w.queue = keep ? [current, ...incoming.filter((i) => i.id !== current.id)] : incoming;
    while (w.waiting.length && w.queue.length) {
      const entry = w.waiting.shift();
      entry.item = w.queue.shift();
      record(entry);
    }
    w.done = !w.queue.length && !w.pending.length && w.reflected >= w.seq; // Python has nothing more to offer
    if (w.waiting.length && w.done) {
      say(`Nothing left to label: ${w.waiting.length} waiting press(es) dropped.`, true);
      w.history = w.history.filter((entry) => entry.item);
      w.waiting = [];
    }
    clearTimeout(w.timer);
    if (w.pending.length) {
      // Normally the next rerun acknowledges them; resend only if it never comes, backing off.
      w.timer = setTimeout(() => {
        if (root.isConnected && w.pending.length) { w.tries += 1; flush(); }
      }, RESEND_MS * 2 ** Math.min(w.tries, 4));
    } else {
      w.tries = 0;
    }
    render();
    grabFocus(false);
  };
  return w;
}
