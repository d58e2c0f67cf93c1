"""Benchmarks behind ``mixdvae bench``: the paper-layout tables, measured on our data."""
