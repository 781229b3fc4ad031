"""``python -m hpcannotate`` runs the CLI (useful where the console script is not on PATH)."""

from .cli import run

run()
