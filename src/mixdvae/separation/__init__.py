"""mixdvae.separation"""
