"""certwarden.acme"""
