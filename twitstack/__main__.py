"""`python -m twitstack` runs the command-line interface."""

from twitstack.cli import main

raise SystemExit(main())
