"""mixdvae.plotting"""
