"""Buyers: accounts, identities and their verification, companions."""
