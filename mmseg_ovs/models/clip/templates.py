"""Prompt-template sets, by name.

* ``single``: ``["a photo of a {}."]`` (SegCLIP's evaluation prompt);
* ``imagenet``: the 80 OpenAI ImageNet templates (from open_clip);
* ``imagenet_select``: the 7 open_clip "simple" ImageNet templates + ``"A photo of a {} in the scene"``
  (PixelCLIP's test-time ensemble, in its order);
* ``vild``: ViLD's 14 templates (from mmseg).
"""
from typing import List, Sequence, Union

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

__all__ = ['get_templates', 'TEMPLATE_SETS']


def _as_format_strings(templates) -> List[str]:
    return [t('{}') if callable(t) else t for t in templates]


def _vild_templates() -> List[str]:
    from mmseg.utils.get_templates import PREDEFINED_TEMPLATES
    return list(PREDEFINED_TEMPLATES['vild'])


TEMPLATE_SETS = {
    'single': lambda: ['a photo of a {}.'],
    'imagenet': lambda: _as_format_strings(OPENAI_IMAGENET_TEMPLATES),
    'imagenet_select': lambda: _as_format_strings(SIMPLE_IMAGENET_TEMPLATES) + ['A photo of a {} in the scene'],
    'vild': _vild_templates,
}


def get_templates(templates: Union[str, Sequence[str]]) -> List[str]:
    """Resolve a template-set name or an explicit list of ``{}`` format strings."""
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise KeyError(f'unknown template set {templates!r}; choose from {sorted(TEMPLATE_SETS)} '
                           f'or pass a list of format strings')
        return TEMPLATE_SETS[templates]()
    templates = list(templates)
    if not templates or any('{}' not in t for t in templates):
        raise ValueError(f'templates must be a non-empty list of strings containing "{{}}": {templates!r}')
    return templates
