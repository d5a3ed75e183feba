"""mobilize: the peacetime/emergency switch (平急转换) coordinator.

This package holds what happens (plans, activation, dispatch) and the shared base the other packages
stand on (settings, db, errors). Keep this file free of imports: ``rosters`` imports ``mobilize.db``.
"""

__version__ = "0.1.0"
