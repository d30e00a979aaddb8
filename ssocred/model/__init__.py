"""The pure model: SSO tokens and credentials, config resolution, naming, schedules; no I/O."""
