"""Training jobs for Picsellia experiments."""
