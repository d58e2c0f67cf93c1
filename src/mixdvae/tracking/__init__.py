"""Multi-object tracking with MixDVAE: box observation model, initialisation, windows -> tracks."""
