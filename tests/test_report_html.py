"""`cfspec report`: the self-contained OUT/report.html. Escaping of hostile prompts, changed-word
highlighting, filtered-out pairs with their reasons, embedded images and plots, the generation
settings and random-weight banner, attention and LocalBlend overlays, the index, and a real
headless Chromium rendering it, sorting and filtering the index through the URL fragment
(skipped without Chromium unless CI is set: CI installs it)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_export import (
    PAIRS,
    build_out,
    make_pair,
    metric_row,
    stage_app,
    write_generated,
    write_metrics,
)
from typer.testing import CliRunner

from cfspec.stages.filter import Gates, run_filter
from cfspec.stages.html_report import (
    build_report,
    graph_dot,
    highlight,
    parse_edge,
    report_script,
)
from cfspec.workspace.pairs import Pair, write_pairs
from cfspec.workspace.provenance import is_random_weight

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent

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


def marked(pieces: list[dict[str, str]], kind: str) -> list[str]:
    return [p["text"] for p in pieces if p["kind"] == kind]


def test_highlight_marks_exactly_the_given_spans() -> None:
    prompt = "A woman is cutting a cake."
    pieces = highlight(prompt, [[2, 7]], [[2, 7], [21, 25]])
    assert "".join(p["text"] for p in pieces) == prompt  # the prompt, byte for byte
    assert marked(pieces, "changed") == ["woman"]
    assert marked(pieces, "blend") == ["cake"]  # a LocalBlend word that did not change
    # spans a hand edit put past the end are clipped, never a crash
    assert marked(highlight("a dog", [[2, 99]]), "changed") == ["dog"]
    assert marked(highlight("a dog"), "changed") == []


def compiled_pairs(tmp_path: Path, *specs: Path) -> dict[str, Pair]:
    from cfspec.compile.stage import compile_paths
    from cfspec.lang.config import Config
    from cfspec.workspace.pairs import read_pairs

    out = tmp_path / "compiled"
    assert compile_paths([str(s) for s in specs], Config(), out).written is not None
    pairs, problems = read_pairs(out / "pairs.jsonl")
    assert problems == []
    return {p.id: p for p in pairs}


SWAP = """\
scm pets {
  id "pets"
  prompt "{{ X | a }} and {{ Y | a }}"
  var X: animal = "cat"
  var Y: animal = "dog"
  X -> Y "The dog follows the cat."
  counterfactual swap {
    do(X = "dog")
    set Y = "cat"
  }
}
"""


def test_report_highlights_what_the_compiler_decided(tmp_path: Path) -> None:
    """specs/banana_apple.scm's pear: the blend words are "an orange" -> "a pear", and the "a"
    that changed is the one before "pear", not the prompt's first word. A swap "a cat and a
    dog" -> "a dog and a cat": the compiler (and lint) see cat -> dog and dog -> cat, so the
    report marks those two words, not the "and a dog" a word diff of its own would."""
    swap = tmp_path / "pets.scm"
    swap.write_text(SWAP, encoding="utf-8")
    pairs = compiled_pairs(tmp_path, ROOT / "specs" / "banana_apple.scm", swap)
    pear, pets = pairs["119452_0__pear"], pairs["pets__swap"]
    assert pear.edit["local_blend"]["words_1"] == ["a", "pear"]
    out = build_out(tmp_path / "out", [pear.to_json(), pets.to_json()], seeds=(0,))
    assert build_report(out).diagnostics == []
    html = (out / "report.html").read_text(encoding="utf-8")
    card = html.split('id="pair-119452_0__pear"')[1].split("</article>")[0]
    factual, counterfactual = re.findall(r"<figcaption>(.*?)</figcaption>", card, re.S)[:2]
    assert factual.endswith('a spotty banana sitting on top of <mark class="changed">an</mark> '
                            '<mark class="changed">orange</mark> and some other fruit')
    assert counterfactual.endswith('a spotty banana sitting on top of <mark class="changed">a'
                                   '</mark> <mark class="changed">pear</mark> and some other '
                                   'fruit')
    card = html.split('id="pair-pets__swap"')[1].split("</article>")[0]
    factual, counterfactual = re.findall(r"<figcaption>(.*?)</figcaption>", card, re.S)[:2]
    assert factual.endswith('a <mark class="changed">cat</mark> and a '
                            '<mark class="changed">dog</mark>')
    assert counterfactual.endswith('a <mark class="changed">dog</mark> and a '
                                   '<mark class="changed">cat</mark>')
    # lint's view of the same pair: the slots that changed are X and Y, nothing else
    assert [(a.variable, a.before, a.after) for a in
            (*pets.intervention, *pets.descendant_changes)] == [("X", "cat", "dog"),
                                                                ("Y", "dog", "cat")]


def test_pairs_without_word_spans_are_shown_plain_with_a_note(tmp_path: Path) -> None:
    old = {k: v for k, v in PAIRS[0].items() if k != "word_spans"}  # an earlier compile
    out = build_out(tmp_path / "out", [old], seeds=(0,))
    result = build_report(out)
    card = result.path.read_text(encoding="utf-8").split('id="pair-p1__dog"')[1]
    assert "<figcaption><strong>factual:</strong> a cat on a table</figcaption>" in card
    assert "<mark" not in card
    assert any("word_spans" in note and "cfspec compile" in note for note in result.notes)


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
    # the page's one script is the index's, allowed by its hash and nothing else
    assert html.count("<script") == 1
    assert "default-src 'none'" in html and "unsafe-inline'; script-src 'sha256-" in html
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
    assert dot == graph_dot(Pair.from_json(HOSTILE))
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
    chromium = _require_chromium()
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
    assert dom.lower().count("<script") == 1  # the index's own, nothing made from a prompt
    assert "<b>bold</b>" not in dom and "onerror" not in dom.replace("onerror=alert(2)&gt;", "")
    # the banner, the settings and an overlay per image are there in the rendered page
    assert 'id="random-weights"' in dom and "diffusion model tiny" in dom
    assert dom.count('<figure class="overlay">') == 3 * 4
    # the script ran (the CSP hash let it): the controls it unhides are shown
    assert re.search(r'<form id="index-controls" class="controls">', dom)
    assert "showing 4 of 4 pair(s)" in dom


def _require_chromium() -> str:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed, and CI is set: CI must install it "
                        "(apt-get install chromium)")
        pytest.skip("Chromium is not installed (set CI to make this a failure)")
    return chromium


def _index_rows(dom: str) -> list[tuple[str, bool]]:
    """(pair id, hidden) of the index's rows in the order the browser holds them."""
    index = dom.split('<table id="index">')[1].split("</tbody>")[0]
    return [(m["id"], "hidden" in m["attrs"])
            for m in re.finditer(r'<tr data-card="pair-(?P<id>[^"]+)"(?P<attrs>[^>]*)>', index)]


def _card_hidden(dom: str, pair_id: str) -> bool:
    tag = re.search(rf'<article class="pair [a-z]+" id="pair-{re.escape(pair_id)}"([^>]*)>', dom)
    assert tag is not None, pair_id
    return "hidden" in tag.group(1)


def test_index_sorts_and_filters_in_headless_chromium(tmp_path: Path) -> None:
    """The view is driven by the URL fragment (as a shared link would), and read back from the
    DOM Chromium holds after the page's script ran."""
    chromium = _require_chromium()
    pairs = [*PAIRS, make_pair("p3__hat", "a red hat", "a blue hat", spec="specs/u.scm")]
    out = build_out(tmp_path / "out", pairs)
    dog, chair, red, hat = pairs
    write_metrics(out, [
        metric_row(dog, 0, directional=0.25), metric_row(dog, 1, directional=0.5),
        metric_row(chair, 0, clip=12.0, directional=0.1), metric_row(chair, 1, clip=12.0),
        metric_row(red, 0, directional=0.3), metric_row(red, 1, directional=0.2),
        metric_row(hat, 0, directional=0.4), metric_row(hat, 1, directional=0.35),
    ])
    run_filter(out, Gates())
    report = build_report(out).path
    static = _index_rows(report.read_text(encoding="utf-8"))
    assert [i for i, _ in static] == ["p1__dog", "p1__chair", "p2__red", "p3__hat"]

    def view(fragment: str, profile: str) -> str:
        done = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / profile}",
                               "--dump-dom", f"{report.as_uri()}#{fragment}"],
                              capture_output=True, timeout=120, check=False, text=True)
        assert '<table id="index">' in done.stdout, done.stderr[-2000:]
        return done.stdout

    dom = view("sort=directional_similarity&order=desc", "p1")
    assert _index_rows(dom) == [("p1__dog", False), ("p3__hat", False), ("p2__red", False),
                                ("p1__chair", False)]
    assert 'data-key="directional_similarity" data-type="num" tabindex="0" class="sortable" ' \
           'aria-sort="descending"' in dom
    dom = view("sort=id&order=asc&status=kept&spec=specs%2Ft.scm", "p2")
    assert _index_rows(dom) == [("p1__chair", True), ("p1__dog", False), ("p2__red", False),
                                ("p3__hat", True)]
    assert _card_hidden(dom, "p3__hat") and _card_hidden(dom, "p1__chair")
    assert not _card_hidden(dom, "p1__dog")
    assert "showing 2 of 4 pair(s)" in dom
    dom = view("metric=clip_score_0&max=20", "p3")
    assert [i for i, hidden in _index_rows(dom) if not hidden] == ["p1__chair"]


# --- settings, banner, overlays, the index -----------------------------------------------------

_SCRIPT_ELEMENT = re.compile(r"<script>(.*?)</script>", re.S)
_CSP = re.compile(r'http-equiv="Content-Security-Policy" content="([^"]+)"')


def test_inline_script_is_allowed_by_its_hash_only(tmp_path: Path) -> None:
    html = build_report(build_out(tmp_path / "out", seeds=(0,))).path.read_text("utf-8")
    scripts = _SCRIPT_ELEMENT.findall(html)
    assert len(scripts) == 1 and scripts[0] == report_script()[0]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    csp = _CSP.search(html)
    assert csp is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";"))
    assert directives["script-src"] == f"'sha256-{digest}'"
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"


def test_settings_from_the_manifest_and_the_random_weights_banner(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    html = build_report(out).path.read_text(encoding="utf-8")
    settings = html.split('<section id="settings">')[1].split("</section>")[0]
    for name, value in (("model", "tiny"), ("scheduler", "ddim"), ("steps", "4"),
                        ("guidance", "7.5"), ("image size", "32 × 32 px"),
                        ("blend_start", "0.2"), ("dtype", "float32")):
        assert re.search(rf"<td>{re.escape(name)}</td>\s*<td><code>{re.escape(value)}</code>",
                         settings), name
    assert 'id="random-weights"' in html and "diffusion model tiny" in html


def test_no_banner_for_real_models_and_unknown_settings_are_shown(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_pairs(out, PAIRS[:2])
    write_generated(out, PAIRS[0], 0, model="CompVis/stable-diffusion-v1-4")
    write_generated(out, PAIRS[1], 0, model="tiny")
    html = build_report(out).path.read_text(encoding="utf-8")
    # two models: both listed, with how many pairs each made, and the tiny one is flagged
    assert "<code>CompVis/stable-diffusion-v1-4</code>" in html and "(1 image pair(s))" in html
    assert "diffusion model tiny" in html
    # a setting generate adds later (read generically), escaped like everything else
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines[:1]]
    records[0]["compat_mode"] = "<b>legacy</b>"
    (out / "manifest.jsonl").write_text(json.dumps(records[0]) + "\n", encoding="utf-8")
    html = build_report(out).path.read_text(encoding="utf-8")
    assert 'id="random-weights"' not in html
    assert "<td>compat_mode</td>" in html and "&lt;b&gt;legacy&lt;/b&gt;" in html


def test_random_weight_names() -> None:
    for name in ("tiny", "tiny-sdxl", "random-sd15", "random-vit-l-14", " Tiny "):
        assert is_random_weight(name), name
    for name in ("openai/clip-vit-large-patch14", "CompVis/stable-diffusion-v1-4",
                 "/models/tinyllama-sd", "runwayml/random-photo"):
        assert not is_random_weight(name), name


def test_random_clip_model_of_evaluate_gets_the_banner(tmp_path: Path) -> None:
    from cfspec.workspace.layout import METRICS_FILE, SUMMARY_FILE
    from cfspec.workspace.metrics_rows import metrics_digest

    out = tmp_path / "out"
    write_pairs(out, PAIRS[:1])
    write_generated(out, PAIRS[0], 0, model="CompVis/stable-diffusion-v1-4")
    write_metrics(out, [metric_row(PAIRS[0], 0)])
    digest = metrics_digest((out / METRICS_FILE).read_bytes())
    (out / SUMMARY_FILE).write_text(json.dumps({"clip_model": "random-vit-l-14", "rows": 1,
                                                "means": {}, "metrics_sha256": digest}),
                                    encoding="utf-8")
    html = build_report(out).path.read_text(encoding="utf-8")
    banner = html.split('id="random-weights"')[1].split("</section>")[0]
    assert "CLIP model random-vit-l-14 (evaluate)" in banner
    assert "diffusion model" not in banner


def _overlay_uris(html: str) -> list[str]:
    return re.findall(r'<figure class="overlay"><img src="data:image/png;base64,([^"]+)"', html)


def test_attention_and_mask_overlays_from_the_npz(tmp_path: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    out = build_out(tmp_path / "out", PAIRS[:1], seeds=(0,), size=32)
    html = build_report(out).path.read_text(encoding="utf-8")
    uris = _overlay_uris(html)
    assert len(uris) == 3  # attention on each image, the mask on the counterfactual
    assert "LocalBlend mask (25% of the image may change)" in html
    # the saved attention marks the centre: the overlay is red there and not at the corner
    attention = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("RGB"),
                           dtype=float)
    centre, corner = attention[16, 16], attention[1, 1]
    assert centre[0] - centre[2] > 80 and abs(corner[0] - corner[2]) < 80
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[2]))).convert("RGB"),
                      dtype=float)
    assert mask[16, 16, 2] - mask[16, 16, 0] > 60  # blue inside the mask


def test_empty_mask_is_a_note_and_a_broken_npz_a_damaged_pair(tmp_path: Path) -> None:
    import numpy as np

    from cfspec.workspace import store

    out = build_out(tmp_path / "out", PAIRS[:2], seeds=(0,))
    _, _, npz = store.image_paths(out, PAIRS[0]["id"], 0)
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["mask"] = np.zeros_like(arrays["mask"])
    store.save_npz(npz, arrays)
    _, _, broken = store.image_paths(out, PAIRS[1]["id"], 0)
    broken.write_bytes(b"PK\x03\x04 not a zip")
    result = build_report(out)
    html = result.path.read_text(encoding="utf-8")
    assert len(_overlay_uris(html)) == 2  # the first pair's attention maps only
    assert "LocalBlend mask is empty" in html
    # the broken .npz is damage, as evaluate and export see it: an error, the pair marked
    assert [(d.code.name, d.file) for d in result.diagnostics] == [("damaged-file", str(broken))]
    card = html.split(f'id="pair-{PAIRS[1]["id"]}"')[1].split("</article>")[0]
    assert "damaged: 0.npz: truncated" in card and "<img" not in card.split("Causal graph")[0]


def test_index_lists_every_metric_generically(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0,))
    write_metrics(out, [metric_row(p, 0, new_metric=0.125 * (i + 1), height=32, width=32)
                        for i, p in enumerate(PAIRS)])
    html = build_report(out).path.read_text(encoding="utf-8")
    index = html.split('<table id="index">')[1].split("</table>")[0]
    assert '<th data-key="new_metric" data-type="num">new_metric</th>' in index
    assert '<th data-key="directional_similarity" data-type="num">' in index
    assert re.search(r'<td class="num" data-v="0.375">0.375</td>', index)
    assert 'data-key="height"' not in index  # the image size is not a metric
    # and the card lists it too
    card = html.split('id="pair-p2__red"')[1].split("</article>")[0]
    assert "<td>new_metric</td>" in card


def test_a_metric_without_an_interval_is_shown_with_its_reason() -> None:
    """Below 5 pairs evaluate gives no interval (ci95 null): the mean must still be shown."""
    from cfspec.stages.html_report import _summary_view

    view = _summary_view({"means": {
        "directional_similarity": {"n": 8, "n_pairs": 4, "mean": 0.25, "ci95": None,
                                   "ci_reason": "fewer than 5 pairs"},
        "clip_score_1": {"n": 40, "n_pairs": 20, "mean": 30.0, "ci95": [29.0, 31.0]},
    }})
    assert view is not None
    rows = {m["n"]: m for m in view["means"]}
    assert rows[4]["mean"] == "0.25" and rows[4]["ci"] == "none: fewer than 5 pairs"
    assert rows[20]["ci"] == "[29, 31]"


def test_drawn_guidance_is_shown_as_its_range_not_one_value_per_image() -> None:
    """With `--guidance uniform(...)` every image has its own scale: the settings table says
    what it was drawn from, and the per-image draws stay out of it."""
    from cfspec.workspace.provenance import settings

    lines = [{"id": f"p{n}", "seed": n, "model": "m", "guidance": 7.5 + n,
              "guidance_range": [7.5, 15.0], "drawn": {"guidance": 7.5 + n}} for n in range(5)]
    lines.append({"id": "fixed", "seed": 0, "model": "m", "guidance": 9.0})
    found = settings(lines)
    assert found["guidance"] == [("uniform(7.5, 15) per factual image and seed", 5), (9.0, 1)]
    assert "drawn" not in found and "guidance_range" not in found
