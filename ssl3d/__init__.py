"""ssl3d: single-image coloured point clouds and viewpoints, learnt from image collections."""
__version__ = "0.1.0"
