"""The HTTP side of a node: the till websocket and its commands, the store IT
page's health, pairing, and store IT's local admin calls.
"""
