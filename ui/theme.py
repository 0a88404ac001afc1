"""The look: a Gradio theme with system fonts (no font downloads) and the CSS for our own HTML fragments."""

from __future__ import annotations

import gradio as gr

__all__ = ["COPY_JS", "CSS", "theme"]


def theme() -> gr.themes.Base:
    return gr.themes.Soft(
        primary_hue="indigo",
        neutral_hue="slate",
        radius_size="md",
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


# Copies the Markdown box's value to the clipboard (the browser only allows it from a click).
COPY_JS = """(md) => {
  if (md && navigator.clipboard) { navigator.clipboard.writeText(md); }
  const b = document.querySelector('#copy-md'); if (b) { const t = b.innerText; b.innerText = 'Copied ✓';
  setTimeout(() => { b.innerText = t; }, 1500); }
}"""

CSS = """
.gradio-container { max-width: 1280px !important; margin: 0 auto !important; }
#app-header { padding: 4px 2px 0; }
#mode-line { margin-top: -10px !important; }
#app-header h1 { font-size: 1.6rem; font-weight: 700; margin: 0; letter-spacing: -0.01em; }
#app-header h1 .logo { margin-right: .35rem; }
#app-header p { margin: .2rem 0 0; color: var(--body-text-color-subdued); font-size: .95rem; }
.mode-line { font-size: .82rem; color: var(--body-text-color-subdued); padding: 0 2px; line-height: 1.45; }
.mode-line .mode-dot { display: inline-block; width: .55rem; height: .55rem; border-radius: 50%; background: #f59e0b;
  margin-right: .4rem; }
.mode-line .mode-dot.llm { background: #10b981; }
.mode-line > span:nth-child(2) { font-weight: 600; color: var(--body-text-color); }
.mode-hint { opacity: .85; }

/* chat bubbles (our HTML inside the Chatbot) */
#chat .q { white-space: pre-wrap; overflow-wrap: anywhere; }
#chat .ans p { margin: 0 0 .45rem; }
#chat .ans ul { margin: .2rem 0 .45rem 1.1rem; padding: 0; }
#chat .ans li { margin: .15rem 0 .35rem; }
#chat .ans { overflow-wrap: anywhere; }
sup.cite { display: inline-block; min-width: 1.15rem; padding: 0 .3rem; margin: 0 .08rem; border-radius: 999px;
  font-size: .68rem; line-height: 1.1rem; font-weight: 700; text-align: center; vertical-align: super;
  background: var(--color-accent-soft, #e0e7ff); color: var(--color-accent, #4f46e5);
  border: 1px solid var(--color-accent, #6366f1); cursor: help; }
.ans.refusal { border-left: 3px solid #f59e0b; padding-left: .6rem; }
.ans .refusal-head, .ans .error-head { font-weight: 700; margin-bottom: .25rem; }
.ans .refusal-head { color: #b45309; }
.ans.partial { border-left: 3px solid #6366f1; padding-left: .6rem; }
.ans .partial-head { font-weight: 700; margin-bottom: .25rem; color: #4338ca; }
.ans.error { border-left: 3px solid #ef4444; padding-left: .6rem; }
.ans .error-head { color: #b91c1c; }
.ans-flags { list-style: none; margin: .4rem 0 0 !important; padding: 0; font-size: .8rem; color: #b45309; }
.ans-flags li::before { content: "⚠ "; }
.ans.pending { color: var(--body-text-color-subdued); display: flex; align-items: center; gap: .5rem; }
.spinner { width: .9rem; height: .9rem; border-radius: 50%; border: 2px solid var(--border-color-primary);
  border-top-color: var(--color-accent); animation: spin .8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }

.searched { font-size: .78rem; color: var(--body-text-color-subdued); padding: 0 4px; overflow-wrap: anywhere; }
.searched q { font-style: italic; }
.notice { font-size: .85rem; padding: .45rem .7rem; border-radius: 8px; margin: 2px 0; overflow-wrap: anywhere; }
.notice-error { background: #fef2f2; color: #991b1b; border: 1px solid #fecaca; }
.notice-warn { background: #fffbeb; color: #92400e; border: 1px solid #fde68a; }
.notice-ok { background: #ecfdf5; color: #065f46; border: 1px solid #a7f3d0; }
#actions { gap: .4rem; flex-wrap: wrap; }
#actions button { flex: 0 1 auto !important; min-width: 0 !important; }

/* evidence panel */
#evidence { max-height: 780px; overflow-y: auto !important; padding-right: 2px; }
#notice:not(:has(.notice)), #searched:not(:has(.searched)), #ingest-result:not(:has(div)) { display: none !important; }
.ev-panel { display: flex; flex-direction: column; gap: .6rem; }
.ev-head { font-weight: 700; font-size: 1.02rem; display: flex; align-items: baseline; justify-content: space-between;
  gap: .5rem; flex-wrap: wrap; }
.ev-count { font-weight: 500; font-size: .78rem; color: var(--body-text-color-subdued); }
.ev-empty p { color: var(--body-text-color-subdued); font-size: .88rem; margin: 0; }
.ev-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .65rem .75rem;
  background: var(--block-background-fill); }
.ev-card.cited { border-left: 3px solid var(--color-accent, #6366f1); }
.ev-top { display: flex; align-items: flex-start; gap: .45rem; }
.ev-top sup.cite { vertical-align: baseline; margin-top: .15rem; flex: none; }
.ev-top .rank { font-size: .75rem; color: var(--body-text-color-subdued); margin-top: .15rem; flex: none; }
.ev-title { margin: 0; font-size: .93rem; font-weight: 650; line-height: 1.3; overflow-wrap: anywhere; }
.ev-meta { font-size: .76rem; color: var(--body-text-color-subdued); margin: .3rem 0 .35rem; display: flex;
  flex-wrap: wrap; gap: .15rem .35rem; align-items: center; }
.ev-link { color: var(--color-accent) !important; text-decoration: none; }
.ev-support { display: inline-flex; align-items: center; gap: .35rem; }
.ev-support .bar { display: inline-block; width: 46px; height: 6px; border-radius: 3px;
  background: var(--border-color-primary); overflow: hidden; }
.ev-support .bar > span { display: block; height: 100%; background: #10b981; }
.ev-support.weak .bar > span { background: #f59e0b; }
.ev-abstract { font-size: .84rem; line-height: 1.5; margin: 0; overflow-wrap: anywhere; }
.ev-abstract mark { background: #fef08a; color: inherit; padding: 0 .1rem; border-radius: 3px; }
.dark .ev-abstract mark { background: rgba(250, 204, 21, .35); }
.ev-quote { margin: .2rem 0 .4rem; padding-left: .6rem; border-left: 3px solid #facc15; font-size: .84rem; }
.ev-more summary, .rejected summary { cursor: pointer; font-size: .85rem; font-weight: 600; padding: .3rem 0; }
.ev-more .ev-card { margin-top: .5rem; }
.ev-sub { font-size: .85rem; font-weight: 600; }
.ev-reason { font-size: .84rem; color: var(--body-text-color-subdued); margin: 0; }

/* corpus tab */
.corpus-status { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .6rem; }
.corpus-status .stat { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .6rem .75rem;
  display: flex; flex-direction: column; gap: .15rem; overflow-wrap: anywhere; }
.corpus-status .stat strong { font-size: 1.05rem; }
.corpus-status .stat span { font-size: .78rem; color: var(--body-text-color-subdued); }
.ingest-result { border-radius: 10px; padding: .6rem .8rem; border: 1px solid var(--border-color-primary); }
.ingest-result.ok { background: #ecfdf5; border-color: #a7f3d0; }
.ingest-result.warn { background: #fffbeb; border-color: #fde68a; }
.ingest-result.error { background: #fef2f2; border-color: #fecaca; }
.dark .ingest-result { background: transparent; }
.ingest-head { font-weight: 700; overflow-wrap: anywhere; }
.ingest-summary { font-size: .82rem; margin-top: .2rem; }
.rejected ul { margin: .2rem 0 0 1.1rem; font-size: .8rem; overflow-wrap: anywhere; }

@media (max-width: 640px) {
  #app-header h1 { font-size: 1.3rem; }
  #app-header p { font-size: .85rem; }
  .mode-hint { display: none; }
  #evidence { max-height: none; }
}
"""
