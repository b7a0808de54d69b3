"""Quality measures of a run: implied-CI false-positive rate and power, selection bias, realizability."""
