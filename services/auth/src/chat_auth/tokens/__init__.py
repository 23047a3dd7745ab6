"""Access tokens (JWT) and rotating refresh tokens."""
