"""Allow ``python -m anju``."""

from anju.cli import main

main()
