"""Graph wiring: state, routing, builders and the command line."""
