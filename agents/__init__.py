"""The graph's nodes (agents), one role each, plus the run frame below them.

A node takes the state and the injected run context and returns a partial state update. ``state`` and ``context``
(and their relational counterparts) are the frame every node shares; nodes never import the graph wiring.
"""
