"""Replace, renew, deploy; distribute trust. Imports ca, store, discovery (DESIGN.md)."""
