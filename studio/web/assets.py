"""What the page adds to Gradio's own look and behaviour: CSS for the layout, scripts for the keys.

The layout is a grid of three blocks (`#prompt-block`, `#result-block`, `#settings-block`): on a wide
screen the prompt and the settings share the left column and the result holds the right one,
sticky, so Generate, Stop, the status and the picture stay in view while the settings scroll; on a
narrow screen (a phone) they stack as prompt, result, settings, so the result comes straight after
the prompt and its buttons.
"""

from __future__ import annotations

NARROW_PX = 820  # below this width the blocks stack (phones, narrow windows)

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
  max-height: calc(100vh - 12px); overflow-y: auto;
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

# Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in the page, as in A1111. Plain Enter and
# Shift+Enter in a prompt are new lines.
PAGE_HEAD = """<script>
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    const button = document.querySelector("#generate");
    if (button) { e.preventDefault(); button.click(); }
  }
});
</script>"""
