"""Hooks and runner helpers registered in mmseg/mmengine registries."""
