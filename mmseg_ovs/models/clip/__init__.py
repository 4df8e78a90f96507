"""Thin helpers around open_clip: building CLIP models from local weights, tokenisation, templates."""
