"""Settings: `[tool.cfspec]` in the nearest pyproject.toml, overridden by command-line flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    max_interventions: int = 1
    tokenizer: str | None = None  # a local CLIP tokenizer folder or a cached hub id
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    exclude: tuple[str, ...] = ()
    # `cfspec filter` gates (InstructPix2Pix's defaults); read by cfspec/stages/filter.py.
    filter_min_clip: float = 0.2
    filter_min_directional: float = 0.2
    filter_min_image_similarity: float = 0.7
    # `--images DIR`: where a spec's relative `image "..."` is looked for instead of the spec's
    # own folder (workspace.photos.resolve). A flag only: a project keeps specs beside photos.
    images: Path | None = None
    source: Path | None = field(default=None, compare=False)  # the pyproject.toml it came from

    def merged(self, **overrides: Any) -> Config:
        """A copy with the given non-None values replaced."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


class ConfigError(ValueError):
    pass


def check_selectors(entries: tuple[str, ...] | None, where: str) -> None:
    """Every select/ignore entry must match a code: a typo must never switch a check off
    silently. Raises ConfigError for the first that matches nothing, with a did-you-mean."""
    from cfspec.diagnostics.codes import unknown_selector

    for entry in entries or ():
        problem = unknown_selector(entry)
        if problem:
            raise ConfigError(f"{where}: {problem}")


_KEYS = {
    "select": "select",
    "ignore": "ignore",
    "max-interventions": "max_interventions",
    "tokenizer": "tokenizer",
    "max-file-bytes": "max_file_bytes",
    "exclude": "exclude",
    "filter-min-clip": "filter_min_clip",
    "filter-min-directional": "filter_min_directional",
    "filter-min-image-similarity": "filter_min_image_similarity",
}


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None) -> Config:
    """Read `[tool.cfspec]` from the nearest pyproject.toml above `start` (default: cwd)."""
    path = find_pyproject(start or Path.cwd())
    if path is None:
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read [tool.cfspec]: {error}") from error
    table = data.get("tool", {}).get("cfspec", {})
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key `{key}` in [tool.cfspec]; known: "
                              + ", ".join(sorted(_KEYS)))
        attr = _KEYS[key]
        if attr in ("select", "ignore", "exclude"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: [tool.cfspec] {key} must be a list of strings")
            value = tuple(value)
            if attr != "exclude":
                check_selectors(value, f"{path}: [tool.cfspec] {key}")
        elif attr in ("max_interventions", "max_file_bytes"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{path}: [tool.cfspec] {key} must be a positive integer")
        elif attr.startswith("filter_"):
            # CLIP similarity to a prompt is clamped at 0; the two cosines may be negative.
            low = 0.0 if attr == "filter_min_clip" else -1.0
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not low <= value <= 1.0:
                raise ConfigError(
                    f"{path}: [tool.cfspec] {key} must be a number between {low:g} and 1")
            value = float(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{path}: [tool.cfspec] {key} must be a string")
        values[attr] = value
    return Config(**values, source=path)
