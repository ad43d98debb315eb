"""Devices a node owns: receipt printers (USB, network, file) and their
drawers, ESC/POS encoding and receipt layout (pure), and the durable print queue.
"""
