"""``python -m metagym.cli``: the ``metagym`` command."""

from metagym.cli import main

raise SystemExit(main())
