"""Registered necks."""
from .semantic_group_neck import SemanticGroupNeck  # noqa: F401
