// Keeps what a participant types before Streamlit hears of it.
//
// Streamlit sends a text field's value to the server only when it is committed (Ctrl+Enter or leaving
// the field), and a reload drops whatever was typed since. This script watches the fields named in
// `data.fields` ({widget key: the value the server has stored}), and on every keystroke
//  - keeps the field's text in the tab's sessionStorage as "pending" (a reload does not clear it), and
//  - sends it to the server after `data.idle_ms` without typing while the field keeps the focus, and at
//    once when the page is hidden (leaving the field commits it through Streamlit instead).
// The server stores it and renders again with the stored value: equal to the pending text, the
// pending copy is dropped and the status says "saved". Pending text the server has not stored (the
// page was reloaded before it arrived) is sent again, as a restore, when the page comes back.
// One listener per page, whatever the number of reruns; each render updates what it watches.

const PREFIX = "workbench-draft:";

// The server stores text trimmed, line by line: compare what was typed the same way.
const same = (a, b) => {
  const norm = (s) => String(s).split("\n").map((line) => line.trim()).filter(Boolean).join("\n");
  return norm(a) === norm(b);
};

function keeper() {
  if (window.__workbenchDraftKeeper) return window.__workbenchDraftKeeper;
  const k = { fields: {}, scope: "", idleMs: 800, send: null, unsent: {}, timer: null, status: null,
              restored: new Set() };
  k.pendingKey = (key) => `${PREFIX}${k.scope}:${key}`;
  k.field = (target) => {
    for (const key of Object.keys(k.fields)) {
      const box = document.querySelector(`.st-key-${CSS.escape(key)}`);
      if (box && box.contains(target)) return key;
    }
    return null;
  };
  k.show = (state) => {
    if (!k.status) return;
    k.status.dataset.state = state;
    k.status.textContent = state === "saved" ? "✓ Everything you typed is saved"
      : state === "saving" ? "Saving what you typed…" : "";
  };
  k.flush = () => {
    clearTimeout(k.timer);
    k.timer = null;
    const values = k.unsent;
    if (!Object.keys(values).length || !k.send) return;
    k.unsent = {};
    k.send({ values, restore: false });
  };
  document.addEventListener("input", (event) => {
    const key = k.field(event.target);
    if (key === null || !("value" in event.target)) return;
    const value = event.target.value;
    try { sessionStorage.setItem(k.pendingKey(key), value); } catch (e) { /* private mode: still sent */ }
    k.unsent[key] = value;
    k.show("saving");
    clearTimeout(k.timer);
    k.timer = setTimeout(k.flush, k.idleMs);
  }, true);
  // Leaving the field (a click on Continue, Back, a checkbox) commits it the Streamlit way, and that
  // commit's rerun carries the click. A send of ours at that moment would start another rerun that can
  // cut the click's run short and lose the click; so a pending send is dropped, and the text stays
  // pending in sessionStorage until the server shows it stored.
  document.addEventListener("focusout", (event) => {
    if (k.field(event.target) === null) return;
    clearTimeout(k.timer);
    k.timer = null;
    k.unsent = {};
  }, true);
  window.addEventListener("pagehide", k.flush);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") k.flush(); });
  window.__workbenchDraftKeeper = k;
  return k;
}

export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const k = keeper();
  k.fields = data.fields || {};
  k.scope = data.scope || "";
  k.idleMs = data.idle_ms || 800;
  k.send = (payload) => setTriggerValue("typed", payload);

  let status = parentElement.querySelector("[data-testid='draft-status']");
  if (!status) {
    status = document.createElement("div");
    status.setAttribute("data-testid", "draft-status");
    status.setAttribute("aria-live", "polite");
    status.style.cssText = "font-size: 0.8rem; color: rgba(49, 51, 63, 0.6); min-height: 1.2em;";
    parentElement.appendChild(status);
  }
  k.status = status;

  // What the server stored now: acknowledge pending text it holds, send again what it lacks.
  const restore = {};
  let pending = Object.keys(k.unsent).length > 0;
  for (const [key, stored] of Object.entries(k.fields)) {
    let typed = null;
    try { typed = sessionStorage.getItem(k.pendingKey(key)); } catch (e) { typed = null; }
    if (typed === null) continue;
    if (same(typed, stored)) {
      sessionStorage.removeItem(k.pendingKey(key));
    } else if (!(key in k.unsent) && k.timer === null && !k.restored.has(`${key}\u0000${typed}`)) {
      k.restored.add(`${key}\u0000${typed}`);  // once per text: a server that cannot store it is not asked forever
      restore[key] = typed;
    } else {
      pending = true;
    }
  }
  // Pending text of fields no longer on the page was submitted with its stage, or left behind on
  // purpose (the participant moved on): it must not come back later.
  const scopePrefix = `${PREFIX}${k.scope}:`;
  try {
    for (let i = sessionStorage.length - 1; i >= 0; i--) {
      const name = sessionStorage.key(i);
      if (name && name.startsWith(scopePrefix) && !(name.slice(scopePrefix.length) in k.fields)) {
        sessionStorage.removeItem(name);
      }
    }
  } catch (e) { /* no storage: nothing to clean */ }
  if (Object.keys(restore).length) {
    k.show("saving");
    setTriggerValue("typed", { values: restore, restore: true });
  } else {
    k.show(pending ? "saving" : (data.saved ? "saved" : ""));
  }
}
