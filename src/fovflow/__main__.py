"""`python -m fovflow` runs the command line."""

from fovflow.cli.main import app

app(prog_name="fovflow")
