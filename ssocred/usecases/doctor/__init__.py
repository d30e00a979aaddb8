"""``ssocred doctor``: the checks, in order (``run``), local, routing and network ones, and their verdicts."""
