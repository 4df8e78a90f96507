"""Registered text encoders."""
