"""Infrastructure every step uses.

Settings (the one reader of params.yaml), paths, errors, the stage runner, outputs, memory
checks, plotting, parallel backends, multiple testing.
"""
