"""``python -m joblet`` is the ``joblet`` command."""

from joblet.cli.main import main

main()
