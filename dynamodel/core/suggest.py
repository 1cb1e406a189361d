"""Hints for error messages: the declared names closest to a misspelt one."""

from __future__ import annotations

from collections.abc import Iterable


def close_names(word: object, names: Iterable[str]) -> list[str]:
    """Up to three of ``names`` close to ``word`` (difflib ratio >= 0.6), closest first."""
    import difflib  # the error path only: `import dynamodel` stays cheap

    return difflib.get_close_matches(str(word), sorted(set(names)), n=3, cutoff=0.6)


def suggest(word: str, names: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for an error message, or "" when no name is close."""
    found = close_names(word, names)
    return f" (did you mean {' or '.join(repr(n) for n in found)}?)" if found else ""
