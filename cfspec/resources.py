"""Where the files that ship beside the package live: grammar/, templates/, specs/.

In a source checkout they sit beside the `cfspec/` folder; an installed wheel carries copies in
`cfspec/_data/` (pyproject's force-include). Every module asks here, so a module can move
without its relative paths breaking.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def find(name: str) -> Path | None:
    """`name` (a folder or file under the repository root) in the checkout or the wheel."""
    for candidate in (PACKAGE.parent / name, PACKAGE / "_data" / name):
        if candidate.exists():
            return candidate
    return None


def require(name: str) -> Path:
    found = find(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found beside the cfspec package")
    return found
