"""Provider icons: every manifest's icon is a small, well-formed SVG served from our origin that can
run nothing and load nothing (they are served under the pages' CSP, and opened directly they are
documents of our origin); the logos come from the vendored Lobe Icons package, whose licence and
version are committed beside them, and only the providers it has no logo for keep a monogram."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from providers import catalog

STATIC = Path(__file__).resolve().parents[2] / "static"
ICONS = STATIC / "providers" / "icons"
VENDOR = STATIC / "vendor" / "lobehub-icons-static-svg-1.95.1"
SVG_NS = "{http://www.w3.org/2000/svg}"
# Lobe Icons has no logo for these: they keep our letter monogram (a <text> on a tile).
MONOGRAMS = {"gpustack", "localai", "openllm", "openai_api_compatible", "perfxcloud"}
MAX_BYTES = 8_000  # the largest vendored logo is under 5 kB; a raster would be far more

ICON_FILES = sorted(ICONS.glob("*.svg"))


def parse(path: Path) -> ET.Element:
    """Our own committed files; test_icon_runs_and_loads_nothing refuses any <!ENTITY in them."""
    return ET.parse(path).getroot()  # noqa: S314


@pytest.fixture(scope="module")
def builtin() -> catalog.Catalog:
    return catalog.load((str(catalog.BUILTIN_DIR),))


def test_there_is_an_icon_file_per_provider_and_no_stray_one(builtin) -> None:
    icons = {manifest.provider: STATIC / manifest.icon for manifest in builtin}
    assert len(icons) == 45
    missing = {key: str(path) for key, path in icons.items() if not path.is_file()}
    assert missing == {}
    assert set(ICON_FILES) == set(icons.values())


@pytest.mark.parametrize("path", ICON_FILES, ids=lambda p: p.stem)
def test_icon_is_a_well_formed_svg_with_a_viewbox(path: Path) -> None:
    assert path.stat().st_size < MAX_BYTES
    root = parse(path)
    assert root.tag == f"{SVG_NS}svg"
    view_box = [float(n) for n in root.attrib["viewBox"].split()]
    assert len(view_box) == 4
    assert view_box[2] > 0
    assert view_box[3] > 0


@pytest.mark.parametrize("path", ICON_FILES, ids=lambda p: p.stem)
def test_icon_runs_and_loads_nothing(path: Path) -> None:
    text = path.read_text()
    lowered = text.lower()
    for needle in ("<script", "<foreignobject", "<image", "<iframe", "<use", "<!entity", "@import"):
        assert needle not in lowered, needle
    assert re.search(r"url\(\s*['\"]?(?!#)", text) is None  # url(#gradient) only, never a file
    for element in parse(path).iter():
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            assert not local.startswith("on"), (element.tag, name)  # event handlers
            assert local != "style", element.tag  # the CSP allows no inline style
            if local == "href":
                assert value.startswith("#"), value  # only references inside the file


def test_the_scan_catches_what_it_is_for(tmp_path: Path) -> None:
    """The checks above reject each thing they look for (so they cannot pass vacuously)."""
    bad = {
        "script": (
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>1</script></svg>'
        ),
        "handler": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" onload="x()"/>',
        "href": (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            'viewBox="0 0 1 1"><a xlink:href="https://example.com/"><path d="M0 0"/></a></svg>'
        ),
        "foreign": (
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><foreignObject/></svg>'
        ),
        "style": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" style="x:y"/>',
    }
    for name, text in bad.items():
        path = tmp_path / f"{name}.svg"
        path.write_text(text)
        with pytest.raises(AssertionError):
            test_icon_runs_and_loads_nothing(path)
    no_view_box = tmp_path / "plain.svg"
    no_view_box.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(KeyError):
        test_icon_is_a_well_formed_svg_with_a_viewbox(no_view_box)


def test_logos_are_vendored_and_only_providers_without_one_keep_a_monogram(builtin) -> None:
    monograms = {m.provider for m in builtin if "<text" in (STATIC / m.icon).read_text()}
    assert monograms == MONOGRAMS
    readme = (ICONS / "README.md").read_text()
    assert "@lobehub/icons-static-svg" in readme
    assert "version 1.95.1" in readme
    licence = (VENDOR / "LICENSE").read_text()
    assert "MIT License" in licence
    assert "LobeHub" in licence
    for manifest in builtin:
        if manifest.provider not in MONOGRAMS:
            # Each vendored logo is listed with the package file it came from.
            assert re.search(rf"^\| `{manifest.provider}` \| `[a-z0-9-]+\.svg` \|$", readme, re.M)
