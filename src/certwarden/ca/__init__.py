"""certwarden.ca"""
