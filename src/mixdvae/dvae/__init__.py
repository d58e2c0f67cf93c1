"""mixdvae.dvae"""
