"""Registered segmentors."""
