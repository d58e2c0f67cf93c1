"""mixdvae.tracking"""
