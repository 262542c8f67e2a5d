"""The ``fcnn`` command line: a thin layer over the fcnn library."""
