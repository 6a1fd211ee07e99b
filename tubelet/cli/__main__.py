"""`python -m tubelet.cli` runs the console command."""

from tubelet.cli import main

main()
