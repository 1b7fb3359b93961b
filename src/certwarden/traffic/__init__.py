"""certwarden.traffic"""
