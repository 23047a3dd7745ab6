"""The message service."""
