"""Code both tiers use: the wire protocol, errors, settings, text folding, the index format."""
