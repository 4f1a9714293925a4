"""Collaborative cursors at the edge: the feature (:mod:`.feature`: ticks, delivery, the
link) and its rooms' pure state machine (:mod:`.rooms`)."""
