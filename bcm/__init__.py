"""bcm: business-continuity and incident runbook engine."""

__version__ = "0.1.0"
__all__ = ["__version__"]
