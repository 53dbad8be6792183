"""``python -m graftlab.cli``: the same as the ``graft`` command."""

from . import main

main()
