"""Front end: the ``ssocred`` command line (argparse in, one renderer out)."""
