"""Front end: ``ssocred process`` for credential_process (the daemon client first, then the local answer)."""
