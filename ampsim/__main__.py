"""``python -m ampsim``: the same CLI as the ``ampsim`` command."""
from .cli import main

raise SystemExit(main())
