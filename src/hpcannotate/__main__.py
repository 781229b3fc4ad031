"""``python -m hpcannotate`` runs the CLI (useful where the console script is not on PATH)."""

from hpcannotate.cli import run

run()
