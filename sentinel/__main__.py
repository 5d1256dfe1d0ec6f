"""``python -m sentinel`` is the ``sqlsentinel`` command."""

from sentinel.cli import main

main()
