"""`cfspec report`: the self-contained OUT/report.html. Escaping of hostile prompts, changed-word
highlighting, filtered-out pairs with their reasons, embedded images and plots, and a real
headless Chromium rendering it (skipped without Chromium unless CI is set: CI installs it)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_export import PAIRS, build_out, make_pair, metric_row, stage_app, write_metrics
from typer.testing import CliRunner

from cfspec.filtering import Gates, run_filter
from cfspec.html_report import build_report, graph_dot, highlight, parse_edge

runner = CliRunner()

SCRIPT = "<script>alert(1)</script>"
HOSTILE = make_pair("xss__p", f"a cat on a {SCRIPT} table", "a dog on a <b>bold</b> table",
                    scm=["<img src=x onerror=alert(2)> → B: <i>x</i>", "C → B: fine"],
                    scm_aug=["D → B: new"])
HOSTILE["counterfactual"] = '"><svg onload=alert(3)>'


def hostile_out(root: Path) -> Path:
    pairs = [*PAIRS, HOSTILE]
    out = build_out(root, pairs)
    write_metrics(out, [metric_row(p, s, directional=0.3 if s else 0.25)
                        for p in pairs for s in (0, 1)]
                  + [])
    # p1__chair fails every seed on CLIP
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r.replace('"clip_score_0": 30.0', '"clip_score_0": 12.5') if '"p1__chair"' in r
            else r for r in rows]
    (out / "metrics.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    run_filter(out, Gates())
    return out


def test_word_highlighting() -> None:
    w0, w1 = highlight("A woman is cutting a cake.", "A man is cutting a cake.", ["woman"],
                       ["man"])
    assert [w["text"] for w in w0 if w["kind"] == "changed"] == ["woman"]
    assert [w["text"] for w in w1 if w["kind"] == "changed"] == ["man"]
    # a LocalBlend word that is in both prompts is marked as such, not as changed
    _, blended = highlight("a red car", "a red bus", [], ["red", "bus"])
    assert [(w["text"], w["kind"]) for w in blended] == [("a", ""), ("red", "blend"),
                                                           ("bus", "changed")]
    inserted, _ = highlight("a dog", "a small dog")
    assert all(w["kind"] == "" for w in inserted)


def test_edges_parse() -> None:
    assert parse_edge("W → A: The woman acts.") == ("W", "A", "The woman acts.")
    assert parse_edge("B=apple → D: Ripe peels.") == ("B=apple", "D", "Ripe peels.")
    assert parse_edge("K → A") == ("K", "A", "")


def test_report_escapes_and_shows_every_section(tmp_path: Path) -> None:
    out = hostile_out(tmp_path / "out")
    result = build_report(out)
    html = result.path.read_text(encoding="utf-8")
    assert result.path == out / "report.html" and result.shown == 4
    # hostile text stays text
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html and "onerror=alert(2)>" not in html
    assert "<svg onload" not in html
    assert "<script" not in html  # the page itself has no script at all
    assert "default-src 'none'" in html  # and forbids any
    # images and plots are embedded, nothing is fetched
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 2 * 4
    assert not re.search(r'(src|href)="(https?:|file:|//)', html)
    # changed words highlighted, graphs listed, metrics shown
    assert '<mark class="changed">dog</mark>' in html
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "D &rarr; B: new" in html
    assert "directional similarity" in html
    # the filtered-out pair is listed with its reason
    dropped = html.split("Filtered out (1)")[1]
    assert "p1__chair" in dropped and "none of 2 seed(s) passed every gate" in dropped
    assert "clip_similarity_0 = 0.1250 &lt; 0.2 (min-clip)" in dropped


def test_report_plots_use_matplotlib(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = hostile_out(tmp_path / "out")
    html = build_report(out).path.read_text(encoding="utf-8")
    plot = re.search(r'<section class="plot">.*?src="data:image/png;base64,([^"]+)"', html,
                     re.S)
    assert plot is not None
    assert base64.b64decode(plot.group(1)).startswith(b"\x89PNG")


def test_large_images_are_embedded_as_thumbnails(tmp_path: Path) -> None:
    import io

    from PIL import Image

    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,), size=512)
    html = build_report(out).path.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    sizes = {Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris[:2]}
    assert sizes == {(384, 384)}


def test_report_without_metrics_or_filter(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    result = build_report(out)
    html = result.path.read_text(encoding="utf-8")
    assert "Pairs (3)" in html and "Filtered out" not in html
    assert any("cfspec evaluate" in n for n in result.notes)


def test_graphviz_svg_is_embedded_as_an_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """With `dot` on PATH the graphs become an SVG data URI inside <img> (so nothing in it can
    run). A stand-in `dot` records the DOT it was given and answers a fixed SVG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    seen = tmp_path / "seen.dot"
    fake.write_text(f'#!/bin/sh\ncat > "{seen}"\n'
                    "echo '<svg xmlns=\"http://www.w3.org/2000/svg\"><text>g</text></svg>'\n",
                    encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = build_out(tmp_path / "out", [HOSTILE], seeds=(0,))
    html = build_report(out).path.read_text(encoding="utf-8")
    assert 'src="data:image/svg+xml;base64,' in html
    dot = seen.read_text(encoding="utf-8")
    assert dot == graph_dot(HOSTILE)
    assert '"<img src=x onerror=alert(2)>"' in dot  # quoted as a DOT string, never as HTML


def test_report_command(tmp_path: Path) -> None:
    out = hostile_out(tmp_path / "out")
    result = runner.invoke(stage_app(), ["report", str(out), "--max-pairs", "2"])
    assert result.exit_code == 0, result.output
    assert "2 of 4 pair(s) shown" in result.output
    missing = runner.invoke(stage_app(), ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2


# --- a real browser ----------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed, and CI is set: CI must install it "
                        "(apt-get install chromium)")
        pytest.skip("Chromium is not installed (set CI to make this a failure)")
    out = hostile_out(tmp_path / "out")
    report = build_report(out).path
    shot = tmp_path / "shot.png"
    common = [chromium, *CHROMIUM_FLAGS, "--window-size=1280,2000"]
    subprocess.run([*common, f"--user-data-dir={tmp_path / 'profile-1'}",
                    f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes().startswith(b"\x89PNG")
    dumped = subprocess.run([*common, f"--user-data-dir={tmp_path / 'profile-2'}",
                             "--dump-dom", report.as_uri()],
                            capture_output=True, timeout=120, check=False, text=True)
    dom = dumped.stdout
    assert "Filtered out (1)" in dom and "xss__p" in dom
    # the prompt's markup is text in the DOM: serialized escaped, no element made from it
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()
    assert "<b>bold</b>" not in dom and "onerror" not in dom.replace("onerror=alert(2)&gt;", "")
