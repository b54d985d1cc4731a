"""`python -m drainage` is the `drainage` command."""

from drainage.cli import app

app()
