"""certwarden.web"""
