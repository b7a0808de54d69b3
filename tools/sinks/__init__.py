"""Where a run's output goes: run folders (Parquet, CSV, JSONL, report) and a constrained SQLite database.

Files are written atomically: no half-written file under its final name. ``sql_checks`` runs a file of named SQL
checks against a finished database (the independent check of keys and rules).
"""
