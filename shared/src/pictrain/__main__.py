"""`python -m pictrain`: the same as the `pictrain` console script."""

from pictrain.cli import main

main()
