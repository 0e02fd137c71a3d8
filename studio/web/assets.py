"""What the page adds to Gradio's own look and behaviour: CSS for the layout, scripts for the keys,
the busy Generate button and the notes that show where a send landed.

The layout is a grid of three blocks (`#prompt-block`, `#result-block`, `#settings-block`): on a wide
screen the prompt and the settings share the left column and the result holds the right one,
sticky, so Generate, Stop, the status and the picture stay in view while the settings scroll; on a
narrow screen (a phone) they stack as prompt, result, settings, so the result comes straight after
the prompt and its buttons.
"""

from __future__ import annotations

import json

NARROW_PX = 820  # below this width the blocks stack (phones, narrow windows)

# Gradio scopes the page's CSS to its `.contain` (inside `@media` only there), so what styles its own
# wrappers lives in PAGE_HEAD. Gradio's `.gradio-container` has `overflow: hidden`: that made it the
# scroll container of every sticky block inside it (one that never scrolls), so the result block
# scrolled away with the page. `clip` clips the same without being a scroll container.
CONTAINER_CSS = f"""
.gradio-container {{ overflow: clip !important; }}
@media (max-width: {NARROW_PX}px) {{
  .gradio-container {{ --layout-gap: 10px; }}
  .gradio-container > .main {{ padding: 10px 10px !important; }}
}}
"""

PAGE_CSS = f"""
#workspace {{
  display: grid !important;
  grid-template-columns: minmax(320px, 5fr) minmax(320px, 6fr);
  grid-template-areas: "prompt result" "settings result";
  grid-template-rows: auto 1fr;
  gap: 12px 16px;
  align-items: start;
}}
#prompt-block {{ grid-area: prompt; min-width: 0; }}
#settings-block {{ grid-area: settings; min-width: 0; }}
#result-block {{
  grid-area: result; min-width: 0;
  position: sticky; top: 6px; align-self: start;
  /* short enough to stay whole above Gradio's footer (~53 px) when the page is scrolled to its end */
  max-height: calc(100vh - 72px); overflow-y: auto;
}}
@media (max-width: {NARROW_PX}px) {{
  #workspace {{ grid-template-columns: minmax(0, 1fr); grid-template-areas: "prompt" "result" "settings"; }}
  #result-block {{ position: static; max-height: none; overflow-y: visible; }}
}}
#title h1 {{ font-size: 1.2rem !important; margin: 0 !important; }}
#prompt-block, #settings-block, #result-block {{ gap: 8px !important; }}
#token-count, #negative-token-count {{ font-size: 0.85em; opacity: 0.85; margin-top: -4px; }}
#token-count p, #negative-token-count p {{ margin: 0; }}
/* The result: the live preview turning into the final image, at its own size (never blown up),
   at most the width of its column and most of the screen's height. */
#result {{ min-height: 96px; }}
#result .image-container, #result .image-frame {{ height: auto !important; }}
#result img {{
  width: auto !important; height: auto !important; max-width: 100%; max-height: 62vh;
  object-fit: contain; margin: 0 auto; display: block;
}}
#status {{ min-height: 1.6em; }}
/* Error toasts at the bottom: at the top right they covered Generate and Stop. */
.toast-wrap {{ top: auto !important; bottom: 12px !important; }}
#status p {{ margin: 0; }}
#buttons button {{ min-height: 44px; }}
.weight-up {{ color: #15803d; font-weight: 600; }}
.weight-down {{ color: #b91c1c; }}
#parsed-view .warning {{ color: #b45309; }}
#final-prompt .as-sent, #parsed-view .fragments {{ white-space: pre-wrap; overflow-wrap: anywhere; }}
#parsed-view table.schedule td {{ white-space: pre-wrap; overflow-wrap: anywhere; vertical-align: top; }}
#parsed-view table.schedule td:first-child {{ white-space: nowrap; }}
/* The images of one Generate: a grid of square thumbnails as tall as it needs (no scroller of its own). */
#gallery {{ height: auto !important; }}
#gallery .grid-wrap {{ height: auto !important; max-height: none !important; overflow: visible !important; }}
#gallery .grid-container {{
  grid-template-columns: repeat(auto-fill, minmax(76px, 1fr)) !important; grid-auto-rows: auto !important;
}}
#gallery .gallery-item {{ height: auto !important; aspect-ratio: 1; }}
/* Generate while this tab's own run waits or runs (studioBusy in PAGE_HEAD). */
body.studio-busy #generate {{ color: transparent !important; position: relative; cursor: progress; }}
body.studio-busy #generate::after {{
  content: "Generating…"; position: absolute; inset: 0; display: flex; align-items: center;
  justify-content: center; color: var(--button-primary-text-color, #fff);
  animation: studio-pulse 1.4s ease-in-out infinite;
}}
@keyframes studio-pulse {{ 50% {{ opacity: 0.55; }} }}
/* What a send says where it landed (studioSent in PAGE_HEAD); a click closes it. */
#send-note {{
  position: absolute; z-index: 60; max-width: min(440px, calc(100vw - 24px)); padding: 6px 12px;
  border-radius: 8px; background: var(--color-accent, #f97316); color: #fff; font-weight: 600;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25); cursor: pointer;
}}
#send-note div {{ font-weight: 400; font-size: 0.9em; }}
/* A phone: less height for the same controls; rows that wrap to whole lines. */
@media (max-width: {NARROW_PX}px) {{
  #result .empty {{ height: 120px !important; min-height: 0 !important; }}
  #size-row {{ flex-wrap: nowrap !important; align-items: flex-end; }}
  #size-row > .form {{ flex: 1 1 0 !important; min-width: 0 !important; }}
  #size-row #width, #size-row #height {{ flex: 1 1 40% !important; min-width: 0 !important; }}
  #size-row #aspect {{ flex: 1 1 100% !important; }}
  #swap-size {{ flex: 0 0 44px !important; min-height: 44px; }}
  #send-row {{ display: grid !important; grid-template-columns: 1.4fr 1fr 1fr 1fr; }}  /* the seed, then 3 + 2 sends */
  #send-row > button {{ min-width: 0 !important; padding-left: 2px; padding-right: 2px; }}
  #send-row > .form {{ grid-row: span 2; }}
  [id^="cn-image-"], [id^="cn-map-"] {{ flex: 3 1 0 !important; min-width: 0 !important; height: 210px !important; }}
  [id^="cn-map-"] {{ flex-grow: 2 !important; }}
  button[id^="cn-show-"], button[id^="cn-use-"] {{ flex: 1 1 0 !important; min-width: 0 !important; }}
  [id^="cn-pixel-perfect-"] {{ min-width: 120px !important; }}
}}
"""

# 128 random bits from the browser's CSPRNG (crypto.getRandomValues works on plain http too).
NEW_TAB_KEY = """() => Array.from(crypto.getRandomValues(new Uint8Array(16)),
                                  (b) => b.toString(16).padStart(2, "0")).join("")"""

# History across reloads: the tab keeps its image paths in its own session storage (never on the
# server, never shared): a reload gives the tab its list back, and other tabs keep theirs (one key for
# the whole browser made a reload show another tab's images). On load it hands them back and the
# server keeps the ones it really wrote.
HISTORY_STORE = "studio-history"
SAVE_HISTORY = f"""(paths) => {{
  try {{ sessionStorage.setItem("{HISTORY_STORE}", JSON.stringify(paths || [])); }} catch (e) {{}}
  return paths;
}}"""
LOAD_HISTORY = f"""() => {{
  try {{ return JSON.parse(sessionStorage.getItem("{HISTORY_STORE}") || "[]"); }} catch (e) {{ return []; }}
}}"""
# The tab's history owner: a secret kept in the same session storage, made once per tab (a reload keeps
# it; a new tab makes its own). The server signs history entries for it, so an entry copied out of one
# tab opens nothing in another (sessions.HistorySigner).
HISTORY_OWNER = "studio-history-owner"
LOAD_HISTORY_OWNER = f"""() => {{
  const made = ({NEW_TAB_KEY})();
  try {{
    const kept = sessionStorage.getItem("{HISTORY_OWNER}");
    if (kept) return kept;
    sessionStorage.setItem("{HISTORY_OWNER}", made);
  }} catch (e) {{}}
  return made;
}}"""

# Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in the page, as in A1111. Plain Enter and
# Shift+Enter in a prompt are new lines.
PAGE_HEAD = "<style>" + CONTAINER_CSS + """</style>
<script>
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    const button = document.querySelector("#generate");
    if (button) { e.preventDefault(); button.click(); }
  }
});
// A short note over the page (what a send or a click did), gone after a few seconds or a click.
window.studioNote = (text, details) => {
  let note = document.getElementById("send-note");
  if (!note) {
    note = document.createElement("div");
    note.id = "send-note";
    note.setAttribute("role", "status");
    note.addEventListener("click", () => note.remove());
    document.body.appendChild(note);
  }
  note.textContent = text;
  for (const line of (details || "").split(String.fromCharCode(10)).filter((l) => l.trim())) {
    const more = document.createElement("div");
    more.textContent = line.replace(/^- /, "· ");
    note.appendChild(more);
  }
  clearTimeout(note.timer);
  note.timer = setTimeout(() => note.remove(), details ? 9000 : 5000);
  return note;
};
// A send's landing place brought into view, with the note just above it saying what landed there.
window.studioSent = (selector, text, details) => {
  const target = document.querySelector(selector);
  if (!target) return;
  const note = window.studioNote(text, details);
  // Scrolled to just below the top, with room above it for the note (which stays where it was put).
  target.style.scrollMarginTop = `${note.offsetHeight + 14}px`;
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  target.scrollIntoView({behavior: still ? "auto" : "smooth", block: "start"});
  const box = target.getBoundingClientRect();
  note.style.left = `${Math.max(4, box.left + window.scrollX)}px`;
  note.style.top = `${Math.max(4, box.top + window.scrollY - note.offsetHeight - 6)}px`;
};
// This tab's Generate is busy from its click until its event ends (page.py chains GENERATE_STARTS
// and GENERATE_ENDS): the button says "Generating…" (CSS, body.studio-busy) and is aria-busy. A
// tab runs one Generate at a time (Gradio drops a click while its event is pending), so a click
// while busy is not silently lost: it says why, next to the button.
window.studioBusy = (busy) => {
  const button = document.querySelector("#generate");
  if (busy && document.body.classList.contains("studio-busy") && button) {
    const note = window.studioNote("Already generating in this tab: Stop it first, or raise Batch count for more images.");
    const box = button.getBoundingClientRect();  // under the button, where the click was; no scrolling
    note.style.left = `${Math.max(4, box.left + window.scrollX)}px`;
    note.style.top = `${box.bottom + window.scrollY + 6}px`;
  }
  document.body.classList.toggle("studio-busy", busy);
  if (button) button.setAttribute("aria-busy", String(busy));
};
</script>"""
GENERATE_STARTS = "() => { window.studioBusy(true); }"
GENERATE_ENDS = "() => { window.studioBusy(false); }"


def sent(selector: str, text: str, unchanged: tuple[str, ...] = ()) -> str:
    """Js chained after a send (`.success(None, js=..., inputs=note)`): `selector` scrolled into view
    with `text` above it and the send's own note (its lines); nothing when that note is one of
    `unchanged` (the send changed nothing: its note stays in view by its button)."""
    args = f"{json.dumps(selector)}, {json.dumps(text)}"
    return (f"(note) => {{ const said = typeof note === 'string' ? note : ''; "
            f"if ({json.dumps(list(unchanged))}.includes(said.trim())) return; "
            f"window.studioSent({args}, said); }}")
