"""Unified Latents (arXiv 2602.17270): encoder, diffusion prior and diffusion decoder trained jointly."""
