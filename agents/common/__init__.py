"""Pieces every learned agent shares: advantage estimation and atomic checkpoints."""
