"""Learning from the unlabelled collection (Part II): labelling functions and weak labels
(:mod:`~blgenre.weak.lfs`, :mod:`~blgenre.weak.labels`, snorkel), label noise in the gold labels
(:mod:`~blgenre.weak.noise`, cleanlab) and the training sets the weak-label model variants use
(:mod:`~blgenre.weak.variants`)."""
