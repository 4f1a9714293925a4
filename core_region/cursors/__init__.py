"""Collaborative cursors at the core: the feature (:mod:`.feature`: relay, reach, room
tokens) and its pure room directory (:mod:`.rooms`)."""
