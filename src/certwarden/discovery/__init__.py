"""certwarden.discovery"""
