"""mixdvae.metrics"""
