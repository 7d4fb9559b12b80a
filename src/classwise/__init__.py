"""Classwise."""
