"""``python -m fcnn``: the same command line as ``fcnn`` (defined in the cli package)."""

from cli.main import main

main()
