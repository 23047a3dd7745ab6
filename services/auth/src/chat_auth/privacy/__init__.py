"""Privacy and consent (CONTRACT §7.2): blocks and per-user settings."""
