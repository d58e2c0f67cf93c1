"""mixdvae.baselines"""
