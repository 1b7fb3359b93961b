"""certwarden.store"""
