"""`python -m services.operations.cli`: the `renewals` command line."""

from services.operations.cli import main

main()
