"""Labelling functions: cheap, fallible rules that vote Fiction, Non-fiction or abstain.

Serves the chapter *Weak supervision*. The rules are written from what Part I found: cataloguers
add bracketed notes that name the genre (``[A novel.]``, ``[A tale.]``, ``[Poems.]``), and the
words of a title that name a form (novel, tale, poems, play; history, travels, grammar, sermon,
report, catalogue) say a lot about genre in every main language of the collection. One function
is a model: the baseline's confident predictions. Each is a :mod:`snorkel` labelling function
over a frame with a ``title`` column (and ``baseline_prob`` for the model's function).

Votes follow the book's label order: 0 = Fiction, 1 = Non-fiction, -1 = abstain.
"""

from __future__ import annotations

import re

FICTION, NONFICTION, ABSTAIN = 0, 1, -1
VOTE_NAMES = {FICTION: "Fiction", NONFICTION: "Non-fiction", ABSTAIN: "abstain"}

#: A cataloguer's bracketed note that names a literary form, e.g. "[A novel.]", "[Poems.]".
BRACKET_FICTION = (r"\[[^\]]*\b(a novel|novels|a tale|tales|a romance|a story|stories|poems?|"
                   r"verses|a ballad|a play|a drama|a comedy|a tragedy|a farce|an allegory|"
                   r"roman|erzählung|novelle|gedichte|conte|nouvelle|romanzo|novela)\b")
#: ... or a form of non-fiction, e.g. "[A sermon.]", "[A history of ...]".
BRACKET_NONFICTION = (r"\[[^\]]*\b(a history|history of|a sermon|sermons|a report|report|"
                      r"a catalogue|catalogue|a guide|a treatise|an essay on|a letter|letters|"
                      r"a memoir|memoirs|an account|a description|a grammar|a dictionary|"
                      r"a lecture|speech|an address|a biography|travels)\b")

#: Words that name a literary form (fiction, poetry and drama count as Fiction in the labels).
FICTION_WORDS = {
    "English": r"novels?|tales?|romances?|stor(?:y|ies)|poems?|poetical works|verses|ballads?|"
               r"plays?|drama|comedy|tragedy|farce|sketches of life|fairy",
    "German": r"romane?|erzählung(?:en)?|novellen?|gedichte|märchen|lustspiel|trauerspiel|"
              r"schauspiel|dichtungen|lieder|sagen",
    "French": r"roman|contes?|nouvelles?|poésies|poèmes?|comédie|drame|tragédie|récits?|chansons",
    "Dutch": r"verhalen|verhaal|vertelling(?:en)?|gedichten|blijspel|treurspel|dichtwerken|"
             r"novellen",
    "Italian": r"romanzo|racconti|racconto|novelle|poesie|commedia|tragedia|dramma|poema|canti|"
               r"leggenda",
    "Spanish": r"novela|cuentos?|poesías|comedia|poema|leyendas?|versos|drama",
    "Swedish": r"roman|noveller|dikter|sånger|skådespel|lustspel|sagor|berättelser",
}
#: Words that name a form of non-fiction.
NONFICTION_WORDS = {
    "English": r"history|histories|travels?|voyages?|journey|grammar|dictionary|sermons?|"
               r"reports?|catalogue|guide|handbook|treatise|memoirs?|lectures?|proceedings|"
               r"annals|description|account of|observations|statistics|survey|directory|"
               r"letters? on|essays? on|notes on|life of|biography|geology|manual",
    "German": r"geschichte der|geschichte des|reisen?|beschreibung|grammatik|wörterbuch|"
              r"predigten?|bericht|katalog|handbuch|abhandlung|beiträge|chronik|führer|"
              r"untersuchungen|denkschrift|lehrbuch|leben und",
    "French": r"histoire de|histoire des|voyages?|description|grammaire|dictionnaire|sermons?|"
              r"rapport|catalogue|guide|traité|mémoires?|notice|essai|recherches|annales|"
              r"études?|précis|manuel",
    "Dutch": r"geschiedenis|reis|reizen|beschrijving|spraakkunst|woordenboek|leerredenen?|"
             r"verslag|catalogus|handleiding|verhandeling|gids|bijdragen",
    "Italian": r"storia|viaggio|viaggi|descrizione|grammatica|dizionario|prediche|relazione|"
               r"catalogo|guida|trattato|memorie|cenni|notizie|cronaca",
    "Spanish": r"historia|viajes?|descripción|gramática|diccionario|sermón|informe|memoria|"
               r"catálogo|guía|tratado|apuntes|noticias?|reseña|crónica",
    "Swedish": r"historia|resa|resor|beskrifning|beskrivning|grammatik|ordbok|predikan|"
               r"handbok|katalog|redogörelse|underrättelser",
}
#: The model-based function votes only where the baseline is at least this sure (chosen on the
#: validation split: see :func:`blgenre.weak.labels.choose_model_lf_threshold`).
MODEL_CONFIDENCE = 0.8


def _compile(words: str) -> re.Pattern:
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


def keyword_lf(name: str, pattern: str, vote: int, whole_words: bool = True):
    """A snorkel labelling function voting ``vote`` when ``pattern`` occurs in the title."""
    from snorkel.labeling import LabelingFunction

    regex = _compile(pattern) if whole_words else re.compile(pattern, re.IGNORECASE)

    def vote_on(x, regex=regex):
        return vote if regex.search(x.title) else ABSTAIN

    return LabelingFunction(name, f=vote_on)


def model_lf(threshold: float = MODEL_CONFIDENCE, column: str = "baseline_prob"):
    """Votes with the baseline where its probability of Fiction is >= ``threshold`` or <= 1 - it."""
    from snorkel.labeling import LabelingFunction

    def vote_on(x):
        p = getattr(x, column)
        return FICTION if p >= threshold else NONFICTION if p <= 1 - threshold else ABSTAIN

    return LabelingFunction(f"baseline_confident_{threshold:.2f}", f=vote_on)


def labelling_functions(model_threshold: float | None = MODEL_CONFIDENCE) -> list:
    """The book's labelling functions, in the order the chapter shows them.

    ``model_threshold=None`` leaves out the model-based function (rules only).
    """
    lfs = [keyword_lf("bracket_fiction", BRACKET_FICTION, FICTION, whole_words=False),
           keyword_lf("bracket_nonfiction", BRACKET_NONFICTION, NONFICTION, whole_words=False)]
    for language, words in FICTION_WORDS.items():
        lfs.append(keyword_lf(f"fiction_words_{language.lower()}", words, FICTION))
    for language, words in NONFICTION_WORDS.items():
        lfs.append(keyword_lf(f"nonfiction_words_{language.lower()}", words, NONFICTION))
    if model_threshold is not None:
        lfs.append(model_lf(model_threshold))
    return lfs


def describe() -> list[dict]:
    """One row per rule-based function: its name, its vote and what it looks for."""
    rows = [{"function": "bracket_fiction", "votes": "Fiction",
             "looks for": "a bracketed note naming a literary form, e.g. [A novel.]"},
            {"function": "bracket_nonfiction", "votes": "Non-fiction",
             "looks for": "a bracketed note naming non-fiction, e.g. [A sermon.]"}]
    for table, vote in ((FICTION_WORDS, "Fiction"), (NONFICTION_WORDS, "Non-fiction")):
        for language, words in table.items():
            shown = ", ".join(w.replace("(?:", "(") for w in words.split("|")[:6])
            rows.append({"function": f"{'fiction' if vote == 'Fiction' else 'nonfiction'}_words_"
                         f"{language.lower()}", "votes": vote,
                         "looks for": f"{language} words: {shown}, …"})
    rows.append({"function": "baseline_confident", "votes": "either",
                 "looks for": "the baseline model's prediction, where it is confident"})
    return rows
