"""``python -m dynamodel.cli``: the same as the ``dynamodel`` command."""

from dynamodel.cli import main

main()
