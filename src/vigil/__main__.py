"""Allow ``python -m vigil``."""

from vigil.cli.main import run

run()
