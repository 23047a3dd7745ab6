"""Runtime plumbing shared by the chat services."""
