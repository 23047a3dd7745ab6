"""Users: registration, lookup, search."""
