"""tape's benchmarks: runnable scripts that print tables, comparing peers when they are installed.

Run them with ``python -m benchmarks`` (see ``--help``). Every figure is a median of repeats measured
side by side in one run; compare ratios within a run, never times across runs.
"""
