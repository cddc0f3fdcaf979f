"""``python -m apipod``."""

from apipod.entrypoints.cli.main import main

raise SystemExit(main())
