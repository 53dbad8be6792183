"""graftlab: transfer learning you can defend.

Adapt a pretrained backbone to a small labeled dataset with every standard strategy, prove with honest
statistics which one is best and whether transfer was worth it, then ship and watch the winner.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
