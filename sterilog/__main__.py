"""`python -m sterilog` runs the command line."""

from sterilog.cli import main

main()
