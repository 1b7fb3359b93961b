"""certwarden.lifecycle"""
