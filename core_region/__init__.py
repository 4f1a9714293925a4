"""The core region: the one writer, the precompute, and the publisher to edges."""
