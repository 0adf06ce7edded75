"""`python -m attnad` runs the CLI (and is what torchrun launches)."""

from attnad.cli import main

main()
