"""Load and index the provider manifests. Pure Python (stdlib + yaml): no Django.

Manifests are parsed once per process (`load` is cached by directory list), so no request ever
parses YAML. `Catalog` keeps the manifests in a stable order: by label, as the settings page lists
them, with `openai_api_compatible` last among equals.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from providers.schema import ManifestError, ProviderManifest, parse_manifest

BUILTIN_DIR = Path(__file__).resolve().parent / "catalog"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Catalog:
    def __init__(self, manifests: Sequence[ProviderManifest]) -> None:
        self._by_key = {m.provider: m for m in manifests}
        self._ordered = tuple(manifests)

    def __iter__(self) -> Iterator[ProviderManifest]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def get(self, key: str) -> ProviderManifest | None:
        return self._by_key.get(key)

    def keys(self) -> tuple[str, ...]:
        return tuple(m.provider for m in self._ordered)


def parse_file(path: Path) -> ProviderManifest:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    manifest = parse_manifest(data, source=str(path))
    if manifest.provider != path.stem:
        raise ManifestError(f"{path}: provider {manifest.provider!r} must match the file name")
    return manifest


@lru_cache(maxsize=8)
def load(directories: tuple[str, ...]) -> Catalog:
    """Every `*.yaml` in the directories; a later directory may not redefine a provider."""
    manifests: dict[str, ProviderManifest] = {}
    problems: list[str] = []
    for directory in directories:
        for path in sorted(Path(directory).glob("*.yaml")):
            try:
                manifest = parse_file(path)
            except ManifestError as exc:
                problems.append(str(exc))
                continue
            if manifest.provider in manifests:
                problems.append(f"{path}: provider {manifest.provider!r} is defined twice")
                continue
            manifests[manifest.provider] = manifest
    if problems:
        raise ManifestError("\n".join(problems))
    ordered = sorted(
        manifests.values(),
        key=lambda m: (m.provider == "openai_api_compatible", m.label.en_US.casefold()),
    )
    return Catalog(ordered)
