"""The built docs: every page loads, every image is there, the diagrams are valid SVG, and (when
Chromium is installed) the pages with diagrams screenshot to non-blank PNGs.

One ``mkdocs build --strict`` per module (about 6 s); the screenshots add about 1.5 s each.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "docs_screenshots.py"
DIAGRAMS = {
    "design/": ["img/single-table.svg", "img/layers.svg"],
    "sharding/": ["img/sharding.svg"],
    "migrations/": ["img/migration-states.svg"],
    # the benchmark page's charts, drawn by `python -m benchmarks` (benchmarks/charts.py)
    "benchmarks/": ["img/benchmarks-targets.svg", "img/benchmarks-cold-start.svg"],
}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_screenshots", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


shots = _load()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "site"
    shots.build_site(path)
    return path


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    with shots.serve(site) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def report(site: Path, served: str) -> Any:
    return shots.check_site(site, served)


def test_every_page_loads_and_no_image_is_broken(report: Any) -> None:
    assert report.failures == []
    assert len(report.pages) >= 30


def test_the_diagrams_are_embedded_where_they_belong(report: Any) -> None:
    images = report.images
    for page, expected in DIAGRAMS.items():
        assert sorted(images[page]) == sorted(expected), page


def test_every_diagram_is_a_self_contained_svg(site: Path) -> None:
    svgs = sorted((site / "img").glob("*.svg"))
    assert {p.name for p in svgs} >= {Path(i).name for v in DIAGRAMS.values() for i in v}
    for svg in svgs:
        assert shots.check_svg(svg) == [], svg.name
    sources = sorted((ROOT / "docs" / "img").glob("*.svg"))
    assert [p.read_bytes() for p in sources] == [
        (site / "img" / p.name).read_bytes() for p in sources
    ]


def test_the_svg_check_catches_broken_diagrams(tmp_path: Path) -> None:
    bad = tmp_path / "bad.svg"
    bad.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>')
    assert "not well-formed XML" in shots.check_svg(bad)[0]
    bad.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<image xlink:href="http://example.com/a.png"/></svg>'
    )
    problems = "\n".join(shots.check_svg(bad))
    assert 'role="img"' in problems and "<title>" in problems and "example.com" in problems


def test_the_site_check_catches_a_broken_image(tmp_path: Path) -> None:
    page = tmp_path / "site" / "page"
    page.mkdir(parents=True)
    (page / "index.html").write_text('<html><body><img src="../img/missing.svg"></body></html>')
    (tmp_path / "site" / "index.html").write_text("<html><img src='https://example.com/x.png'>")
    with shots.serve(tmp_path / "site") as base_url:
        found = shots.check_site(tmp_path / "site", base_url)
    text = "\n".join(found.failures)
    assert "broken image ../img/missing.svg" in text
    assert "https://example.com/x.png is not part of the site" in text


@pytest.mark.skipif(not Path(shots.CHROMIUM).is_file(), reason=f"{shots.CHROMIUM} is not installed")
def test_pages_with_diagrams_screenshot(
    report: Any, site: Path, served: str, tmp_path: Path
) -> None:
    pages = report.pages_with_images
    assert sorted(pages) == sorted(DIAGRAMS)
    plan = shots.plan_shots(report, site, pages)
    assert len(plan) == len(pages) + sum(len(v) for v in DIAGRAMS.values())
    assert shots.take_screenshots(shots.CHROMIUM, served, plan, tmp_path) == []
    for shot in plan:
        data = (tmp_path / shot.name).read_bytes()
        assert data.startswith(shots.PNG_SIGNATURE) and not shots.png_is_blank(data)


def test_the_committed_svgs_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "docs_diagrams", ROOT / "scripts" / "docs_diagrams.py"
    )
    assert spec and spec.loader
    diagrams = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagrams)
    for name, build in diagrams.DIAGRAMS.items():
        assert (ROOT / "docs" / "img" / name).read_text() == build(), (
            f"docs/img/{name} is stale: run python scripts/docs_diagrams.py"
        )


def test_the_script_exits_non_zero_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text('<html><img src="img/gone.svg"></html>')
    assert shots.main(["--site", str(site), "--no-chromium"]) == 1
    assert "FAIL: page /: broken image img/gone.svg" in capsys.readouterr().err
    (site / "img").mkdir()
    (site / "img" / "gone.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img"><title>t</title></svg>'
    )
    assert shots.main(["--site", str(site), "--no-chromium"]) == 0
