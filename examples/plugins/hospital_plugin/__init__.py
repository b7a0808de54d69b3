"""An example causalsynth plugin for a hospital: what its entry points register lives in the modules here."""
