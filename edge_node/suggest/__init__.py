"""Search suggestions at the edge: the feature (:mod:`.feature`), its HTTP routes
(:mod:`.routes`), the replica's pure state machine (:mod:`.replica`), the index
(:mod:`.index`), the outbox of logged searches (:mod:`.outbox`), the hashed client sources
(:mod:`.sources`) and prepared answers (:mod:`.prepared`)."""
