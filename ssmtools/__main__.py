"""``python -m ssmtools`` runs the command-line interface."""

from .cli import main

main()
