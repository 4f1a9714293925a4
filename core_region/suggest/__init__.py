"""Search suggestions at the core: the feature (:mod:`.feature`: writes, publishing,
compaction, pruning), its admin routes (:mod:`.admin`), the pure catalog (:mod:`.catalog`) and
published stream (:mod:`.stream`), and the corpus it is seeded from (:mod:`.corpus`)."""
