"""The composition root: the `rag` command (and, built on the same core, its servers)."""
