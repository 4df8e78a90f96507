"""Model building blocks that are not registry components: freezing, the momentum (EMA) teacher
update and SegCLIP's masked-reconstruction branch."""
from .freeze import freeze_by_patterns
from .momentum_teacher import momentum_update_
from .segclip_reconstruction import SegCLIPReconstruction, random_masking, sincos_pos_embed_2d

__all__ = ['freeze_by_patterns', 'momentum_update_', 'SegCLIPReconstruction', 'random_masking',
           'sincos_pos_embed_2d']
