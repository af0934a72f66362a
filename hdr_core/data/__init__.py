"""Data: HDR panorama sources, the train/test split rules, and on-the-fly LDR/HDR training pairs."""
