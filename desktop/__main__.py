"""``python -m desktop``: the Moodroll desktop app."""
import sys

from desktop.app import main

sys.exit(main())
