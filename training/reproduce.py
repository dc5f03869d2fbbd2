"""``python -m training.reproduce [--smoke]``: reproduce the paper's Tables 1-2 and Figure 3.

A thin entry point; the work is in :mod:`training.paper.reproduce`.
"""
from training.paper.reproduce import main

if __name__ == "__main__":
    raise SystemExit(main())
