"""``python -m dynamodel.cli``: the same as the ``dynamodel`` command."""

from . import main

main()
