"""chatbench: the chat backend's own open-loop benchmark of the send-to-deliver path."""
