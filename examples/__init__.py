"""Runnable example specs (``asia``, ``alarm``, ``clinic``, ``hospital``, ``smoking``), shipped with the package."""
