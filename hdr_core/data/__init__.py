"""Data: HDR panorama sources (``sources``: pmndrs, Blender's test set; ``polyhaven``: ``fetch polyhaven``), what
each panorama is (``catalog``: manifests, site groups, the validation groups file), the train/test split rules
(``splits``), on-the-fly LDR/HDR training pairs (``pairs``) and synthetic scene parameters (``synth``)."""
