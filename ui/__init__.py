"""The Gradio web UI: ``ui.app`` (layout, wiring, ``launch``), ``ui.handlers`` (what events do), ``ui.render`` (safe
HTML), ``ui.session`` (per-session state), ``ui.corpus`` and ``ui.feedback``. Nothing is imported here: Gradio is
loaded only by what uses it."""
