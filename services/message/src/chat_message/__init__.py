"""The message service: the only writer of conversations, messages, cursors and attachments."""

PRODUCER = "message"
"""The `producer` of every event this service publishes."""
