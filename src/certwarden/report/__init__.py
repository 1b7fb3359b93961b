"""certwarden.report"""
