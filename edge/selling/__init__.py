"""Selling: the catalogue, baskets, sales, money (pure), cashiers and tills.
"""
