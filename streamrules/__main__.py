"""``python -m streamrules`` is the same as the ``streamrules`` command."""

import sys

from streamrules.cli import main

sys.exit(main())
