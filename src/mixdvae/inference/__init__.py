"""mixdvae.inference"""
