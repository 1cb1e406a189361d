"""The ``dynamodel`` command line (needs the ``cli`` extra: typer and rich).

typer and rich are imported only by `main`, so this package can be imported
(for example by documentation tools) without them.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_INSTALL_HINT = (
    "The dynamodel command line needs extra packages: pip install 'dynamodel[cli]'\n"
    "(or 'dynamodel[local]' for `dynamodel local` and `dynamodel demo`)."
)


def main() -> None:
    """Entry point of the ``dynamodel`` console script."""
    try:
        from dynamodel.cli._app import app
    except ModuleNotFoundError as exc:
        if exc.name not in ("typer", "rich", "click"):
            raise
        print(f"error: {exc.name} is not installed.\n{_INSTALL_HINT}", file=sys.stderr)
        sys.exit(2)
    app()
