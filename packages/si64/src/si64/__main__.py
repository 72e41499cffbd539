"""`python -m local.ops ...` is `si64 ...`."""

from .cli import main

raise SystemExit(main())
