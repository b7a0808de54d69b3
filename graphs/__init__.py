"""Graph wiring: routing, builders, runners and the command line, over ``agents`` and ``tools``."""
