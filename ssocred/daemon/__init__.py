"""Front end: the long-running daemon (scheduler jobs and the Unix socket server)."""
