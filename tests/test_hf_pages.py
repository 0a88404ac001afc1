"""The bundled scraped pages: exact counts on the real files, and the noise each file really has."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.dedup import dedup, normalise_title
from ingest.formats.hf_pages import is_header_line, read_hf_pages
from ingest.records import Record

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "hf-papers"
FILES = sorted(BUNDLED.glob("*.txt"))


@pytest.mark.parametrize(
    ("name", "entries", "first_title"),
    [
        (
            "000_1d103db93eae32e7.txt",
            225,
            "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation",
        ),
        ("001_310c181a504869ef.txt", 119, "On the Provable Advantage of Unsupervised Pretraining"),
        (
            "002_3699ef32a6941384.txt",
            418,
            "One Loss for All: Deep Hashing with a Single Cosine Similarity based Learning Objective",
        ),
        (
            "003_9d20c60a5cdd0f20.txt",
            119,
            "Multi-Prompt Progressive Alignment for Multi-Source Unsupervised Domain Adaptation",
        ),
        ("004_66f26e84b581f671.txt", 84, "Multi-Outputs Is All You Need For Deblur"),
    ],
)
def test_each_page_parses_exactly(name: str, entries: int, first_title: str) -> None:
    result = read_hf_pages(BUNDLED / name)
    assert result.rejections == []
    assert len(result.records) == entries
    assert result.records[0].title == first_title  # "Subscribe" glued to it is gone
    for rec in result.records:
        assert not is_header_line(rec.title)
        assert 406 <= len(rec.abstract) <= 1920
        assert len(rec.title) < 200


def test_corpus_dedups_to_872_papers() -> None:
    records = [r for f in FILES for r in read_hf_pages(f).records]
    assert len(records) == 965
    assert len({normalise_title(r.title) for r in records}) == 871
    papers = dedup(records)
    assert len(papers) == 872
    assert len({p.paper_id for p in papers}) == 872
    # Same title, two genuinely different papers: both kept, distinct ids.
    nlrl = [p for p in papers if p.title == "Natural Language Reinforcement Learning"]
    assert len(nlrl) == 2
    assert nlrl[0].paper_id != nlrl[1].paper_id
    # Cloudflare's e-mail obfuscation in one copy: the clean copy is kept, both pages recorded.
    (wsis,) = [p for p in papers if p.title.startswith("Weakly Supervised Instance Segmentation by Learning")]
    assert "[email protected]" not in wsis.abstract
    assert len(wsis.sources) == 2
    assert all("[email protected]" not in p.abstract for p in papers if "mAP@0.5" in p.abstract)
    # A paper listed on several pages keeps all of them.
    assert max(len(p.sources) for p in papers) >= 3


def test_ids_are_stable_across_runs_and_order() -> None:
    records = [r for f in FILES for r in read_hf_pages(f).records]
    a = {p.title + p.abstract[:50]: p.paper_id for p in dedup(records)}
    b = {p.title + p.abstract[:50]: p.paper_id for p in dedup(list(reversed(records)))}
    assert a == b


@pytest.mark.parametrize(
    ("text", "titles", "reasons"),
    [
        # Header noise in its variants, dates included.
        (
            "new\n\nSubscribe\n\nbyAK and the research community\n\nSep 3, 2024\n\nA Title\n\n" + "An abstract. " * 40,
            ["A Title"],
            [],
        ),
        # A title-only entry between two good ones: rejected with its line, the pair after it still read.
        (
            "T1\n" + "Abstract one is here. " * 30 + "\nLonely title\nT2\n" + "Abstract two is here. " * 30 + "\n",
            ["T1", "T2"],
            ["3: missing abstract (title-only entry)"],
        ),
        # An abstract too short to be one.
        ("T1\nTiny. Text. Here.\n", [], ["1: abstract too short"]),
    ],
)
def test_noise_and_broken_entries(tmp_path: Path, text: str, titles: list[str], reasons: list[str]) -> None:
    f = tmp_path / "page.txt"
    f.write_text(text)
    result = read_hf_pages(f)
    assert [r.title for r in result.records] == titles
    assert len(result.rejections) == len(reasons)
    for rej, reason in zip(result.rejections, reasons, strict=True):
        assert str(rej).startswith(f"page.txt:{reason}")


def test_invalid_utf8_line_is_rejected_rest_kept(tmp_path: Path) -> None:
    good = "Good title\n" + "A fine abstract sentence. " * 20 + "\n"
    bad = b"Bad \xff\xfe title\n" + ("Another abstract sentence. " * 20).encode() + b"\n"
    f = tmp_path / "page.txt"
    f.write_bytes(good.encode() + bad + good.replace("Good", "Other").encode())
    result = read_hf_pages(f)
    assert [r.title for r in result.records] == ["Good title", "Other title"]
    assert [str(r) for r in result.rejections] == ["page.txt:3: invalid UTF-8 bytes"]


def test_dedup_prefers_update_for_explicit_ids() -> None:
    a = Record(title="T", abstract="old abstract text " * 5, source="a.jsonl", line=1, paper_id="p1")
    b = Record(title="T", abstract="new abstract text " * 5, source="a.jsonl", line=2, paper_id="p1")
    (paper,) = dedup([a, b])
    assert paper.abstract.startswith("new")
