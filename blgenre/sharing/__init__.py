"""Part IV of the book: sharing the models and the data, and the apps that let people try them.

:mod:`~blgenre.sharing.cards` (model cards, dataset card, datasheet),
:mod:`~blgenre.sharing.share` (one facade over :mod:`~blgenre.sharing.hub`,
:mod:`~blgenre.sharing.deposit` and :mod:`~blgenre.sharing.lockss`), :mod:`~blgenre.sharing.examples`,
:mod:`~blgenre.sharing.space`, :mod:`~blgenre.sharing.app`, :mod:`~blgenre.sharing.widget` and
:mod:`~blgenre.sharing.screenshot`.
"""
