"""Part IV of the book: sharing the models and the data, and the apps that let people try them.

:mod:`~blgenre.sharing.cards` (model cards, dataset card, datasheet),
:mod:`~blgenre.sharing.share` (Hub folders, deposit, LOCKSS-style copies),
:mod:`~blgenre.sharing.space`, :mod:`~blgenre.sharing.app`, :mod:`~blgenre.sharing.widget` and
:mod:`~blgenre.sharing.screenshot`.
"""
