"""``python -m bcm`` runs the ``bcm`` command."""

from bcm.cli import main

main()
