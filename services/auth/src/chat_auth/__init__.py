"""The auth service: users, passwords, access and refresh tokens, the JWKS."""
