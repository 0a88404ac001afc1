"""The page's words: its title, the line under it, and the example questions (no Gradio here: the tests that check
the examples against the bundled corpus run without the UI library)."""

from __future__ import annotations

__all__ = ["DESCRIPTION", "EXAMPLES", "TITLE"]

TITLE = "Paper RAG"
DESCRIPTION = (
    "Ask questions about ML paper abstracts. Every answer cites its sources, "
    "and every citation is checked against the cited abstract."
)
# Questions the bundled corpus answers (each one's top citation is checked in tests/test_ui.py).
EXAMPLES = (
    "Which methods mine hard negatives with clustering for sentence embeddings?",
    "Can neural networks be trained without back-propagation?",
    "How is music transcription done with diffusion models?",
    "How does representation surgery help multi-task model merging?",
)
