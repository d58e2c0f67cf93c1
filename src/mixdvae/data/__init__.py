"""mixdvae.data"""
