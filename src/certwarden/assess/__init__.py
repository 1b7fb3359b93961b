"""certwarden.assess"""
