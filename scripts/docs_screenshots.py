"""Build the docs, check every page and image, and screenshot pages in headless Chromium.

Usage::

    python scripts/docs_screenshots.py [--out DIR] [--all-pages] [--page design/ ...]
                                       [--site DIR] [--chromium PATH | --no-chromium]

Steps, each failure reported on its own line (exit status 1 if there is any):

1. ``mkdocs build --strict`` into a temporary folder (``--site DIR`` checks a site already
   built there instead).
2. Serve the site on 127.0.0.1 (a free port) from a thread, and load every page's HTML.
3. Parse each page (``html.parser``): every ``<img>`` must point into the site (no other host)
   at a file that loads and is not empty.
4. Every SVG under ``img/`` must be well-formed XML with an ``<svg>`` root, ``role="img"`` and
   a ``<title>``, and reference nothing outside itself.
5. Screenshot the chosen pages (by default every page with an image, and the home page;
   ``--all-pages`` for all of them) with ``chromium --headless`` at 1280x2000 into ``--out``
   (default: a new temporary folder), then each image of those pages on its own, at its own
   size (``image_img_layers.svg.png``), and check each PNG was written, is a PNG and is not
   blank.

Chromium gets a new empty profile for each page and flags that keep it off the network; the
site itself loads nothing from other hosts. Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
PAGE_SIZE = (1280, 2000)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


@dataclass
class SiteReport:
    """What the checks found: every page (site-relative URL path), its images, the failures."""

    pages: list[str] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def pages_with_images(self) -> list[str]:
        return [page for page in self.pages if self.images.get(page)]


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs).get("src"))


def build_site(dest: Path) -> None:
    """``mkdocs build --strict`` into ``dest``; raises ``RuntimeError`` with mkdocs' output."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(dest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 from a thread; yields the base URL (ending in ``/``)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def site_pages(site: Path) -> list[str]:
    """Every page of the site, as URL paths relative to its root (``""`` is the home page)."""
    pages = []
    for path in sorted(site.rglob("index.html")):
        relative = path.parent.relative_to(site).as_posix()
        if relative.split("/")[0] in {"assets", "search"}:
            continue
        pages.append("" if relative == "." else relative + "/")
    return pages


def check_svg(path: Path) -> list[str]:
    """Problems of one diagram: not XML, not an accessible SVG, or references outside it."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        return [f"{path.name}: not well-formed XML: {error}"]
    problems = []
    if root.tag != f"{SVG_NS}svg":
        problems.append(f"{path.name}: the root element is {root.tag}, not an SVG <svg>")
    if root.get("role") != "img":
        problems.append(f'{path.name}: the <svg> element has no role="img"')
    if root.find(f"{SVG_NS}title") is None or not (root.findtext(f"{SVG_NS}title") or "").strip():
        problems.append(f"{path.name}: no <title> (the accessible name) as a child of <svg>")
    for element in root.iter():
        for name, value in element.attrib.items():
            if name.endswith("href") and not value.startswith("#"):
                problems.append(f"{path.name}: <{element.tag}> references {value!r}")
            if "url(" in value and "url(#" not in value:
                problems.append(f"{path.name}: <{element.tag}> {name} references {value!r}")
        if element.tag in {f"{SVG_NS}script", f"{SVG_NS}foreignObject", f"{SVG_NS}image"}:
            problems.append(f"{path.name}: contains a <{element.tag}> element")
    text = path.read_text()
    if "@import" in text or "@font-face" in text:
        problems.append(f"{path.name}: loads styles or fonts from outside")
    return problems


def check_site(site: Path, base_url: str) -> SiteReport:
    """Load every page over HTTP and check its images and the site's SVG diagrams."""
    report = SiteReport(pages=site_pages(site))
    if not report.pages:
        report.failures.append(f"no pages found in {site}")
    host = urlsplit(base_url).netloc
    for page in report.pages:
        url = urljoin(base_url, page)
        try:
            html = _get(url).decode()
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
            report.failures.append(f"page /{page}: does not load: {error}")
            continue
        if "<html" not in html.lower():
            report.failures.append(f"page /{page}: the response is not an HTML page")
            continue
        parser = _Images()
        parser.feed(html)
        images = report.images.setdefault(page, [])
        for source in parser.sources:
            if not source:
                report.failures.append(f"page /{page}: an <img> without src")
                continue
            target = urljoin(url, source)
            if urlsplit(target).netloc != host:
                report.failures.append(f"page /{page}: image {source} is not part of the site")
                continue
            images.append(urlsplit(target).path.lstrip("/"))
            try:
                body = _get(target)
            except (urllib.error.URLError, OSError) as error:
                report.failures.append(f"page /{page}: broken image {source}: {error}")
                continue
            if not body:
                report.failures.append(f"page /{page}: image {source} is an empty file")
    for svg in sorted((site / "img").glob("*.svg")):
        report.failures.extend(check_svg(svg))
    return report


def png_is_blank(data: bytes) -> bool:
    """True if an 8-bit PNG holds nothing but white (or transparent) pixels."""
    chunks, at = [], 8
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    # drop the row filter types (0-4) and white/opaque bytes: anything left is a drawn pixel
    return not raw.translate(None, delete=bytes([0, 1, 2, 3, 4, 255]))


def screenshot(
    chromium: str, url: str, png: Path, size: tuple[int, int], profiles: Path
) -> str | None:
    """Screenshot ``url`` into ``png`` at ``size``; returns a failure message or ``None``."""
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=profiles))
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        url,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return f"{url}: chromium did not finish within 120 s"
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if not png.is_file() or png.stat().st_size == 0:
        tail = (done.stderr or done.stdout)[-1500:]
        return f"{url}: no screenshot written (chromium exit {done.returncode}):\n{tail}"
    data = png.read_bytes()
    if data[:8] != PNG_SIGNATURE:
        return f"{url}: {png} is not a PNG file"
    try:
        blank = png_is_blank(data)
    except (zlib.error, ValueError) as error:
        return f"{url}: {png} cannot be decoded: {error}"
    if blank:
        return f"{url}: the screenshot {png} is blank (nothing was drawn)"
    return None


@dataclass(frozen=True)
class Shot:
    """One screenshot: a URL path of the site, the PNG's name, the window size."""

    path: str
    name: str
    size: tuple[int, int] = PAGE_SIZE


def _svg_size(svg: Path) -> tuple[int, int]:
    root = ET.parse(svg).getroot()
    width = round(float(root.get("width", "800").removesuffix("px")))
    height = round(float(root.get("height", "600").removesuffix("px")))
    return max(width, 100), max(height, 100)


def plan_shots(report: SiteReport, site: Path, pages: list[str]) -> list[Shot]:
    """Each chosen page at 1280x2000, then each image on them alone, at its own size.

    A diagram far down a page is below the first 2,000 pixels (and headless Chromium draws a
    blank page when asked to scroll to a fragment), so every image also gets a picture of its
    own, rendered by Chromium from the served file.
    """
    shots = [Shot(page, (page.strip("/").replace("/", "_") or "index") + ".png") for page in pages]
    seen: set[str] = set()
    for page in pages:
        for image in report.images.get(page, []):
            if image in seen:
                continue
            seen.add(image)
            file = site / image
            size = _svg_size(file) if file.suffix == ".svg" and file.is_file() else PAGE_SIZE
            shots.append(Shot(image, "image_" + image.replace("/", "_") + ".png", size))
    return shots


def take_screenshots(chromium: str, base_url: str, shots: list[Shot], out: Path) -> list[str]:
    """Take each screenshot into ``out``; returns the failures."""
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory(prefix="chromium-") as profiles:
        for shot in shots:
            png = out / shot.name
            png.unlink(missing_ok=True)
            url = urljoin(base_url, shot.path)
            problem = screenshot(chromium, url, png, shot.size, Path(profiles))
            if problem:
                failures.append(problem)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, help="folder for the PNGs (default: a new temp dir)")
    parser.add_argument("--site", type=Path, help="check this built site instead of building")
    parser.add_argument("--all-pages", action="store_true", help="screenshot every page")
    parser.add_argument(
        "--page", action="append", default=[], help="screenshot this page (e.g. design/)"
    )
    parser.add_argument("--chromium", default=CHROMIUM, help=f"default {CHROMIUM}")
    parser.add_argument("--no-chromium", action="store_true", help="checks only, no screenshots")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="docs-site-") as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            try:
                build_site(site)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"FAIL: {error}", file=sys.stderr)
                return 1
        with serve(site) as base_url:
            report = check_site(site, base_url)
            failures = list(report.failures)
            image_count = sum(len(images) for images in report.images.values())
            print(f"{len(report.pages)} pages, {image_count} images checked")
            if not args.no_chromium:
                if not Path(args.chromium).is_file():
                    failures.append(f"{args.chromium} not found (use --no-chromium to skip)")
                else:
                    chosen = (
                        report.pages
                        if args.all_pages
                        else args.page or ["", *report.pages_with_images]
                    )
                    shots = plan_shots(report, site, chosen)
                    out = args.out or Path(tempfile.mkdtemp(prefix="docs-screenshots-"))
                    failures += take_screenshots(args.chromium, base_url, shots, out)
                    print(f"{len(shots)} screenshots in {out}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
