from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.settings import BUNDLED_CORPUS, Settings


def test_defaults() -> None:
    s = Settings()
    assert s.data_dir == Path(".rag")
    assert s.corpus_dir == BUNDLED_CORPUS
    assert s.store.mode == "embedded"
    assert s.embedding.provider == "local"


def test_env_vars_nested(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_STORE__MODE", "server")
    monkeypatch.setenv("RAG_STORE__PORT", "9001")
    monkeypatch.setenv("RAG_CHUNKING__MAX_TOKENS", "128")
    s = Settings()
    assert (s.data_dir, s.store.mode, s.store.port, s.chunking.max_tokens) == (tmp_path, "server", 9001, 128)


def test_toml_file_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text('data_dir = "/srv/rag"\n[store]\ncollection = "arxiv"\nport = 8100\n')
    monkeypatch.setenv("RAG_STORE__PORT", "8200")  # env beats the file
    s = Settings.load(cfg)
    assert (s.data_dir, s.store.collection, s.store.port) == (Path("/srv/rag"), "arxiv", 8200)


def test_rag_toml_in_working_dir_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "rag.toml").write_text("[chunking]\nmax_tokens = 200\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().chunking.max_tokens == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"store": {"colection": "x"}}, "Extra inputs are not permitted"),
        ({"store": {"mode": "cloud"}}, "Input should be 'embedded' or 'server'"),
        ({"chunking": {"max_tokens": 4}}, "greater than or equal to 32"),
        ({"store": {"collection": "ab"}}, "3-63 characters"),
    ],
)
def test_bad_settings_are_clear(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**kwargs)  # type: ignore[arg-type]


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        Settings.load(tmp_path / "nope.toml")
