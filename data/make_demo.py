"""Generate data/demo.txt: a small made-up world with planted relations.

    python data/make_demo.py            # writes data/demo.txt and data/demo-analogies.txt

Four relations, fifteen word pairs each: gender (king/queen), capital
(france/paris), plural (cat/cats) and tense (walk/walked). Each pair has its own
combination of three topic words, shared by both sides (so king and queen are
near each other) while each topic word serves several pairs (so it is not nearer
to king than queen is). Each side of a relation has its own form words (he/his
for male words, she/her for female ones), so that queen - king + man lands near
woman. Sentences mix
these with filler vocabulary of Zipf-distributed frequency. The same seed always
gives the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 2026
RELATIONS = {
    "gender": {
        "pairs": [
            ("king", "queen"), ("prince", "princess"), ("man", "woman"), ("boy", "girl"),
            ("father", "mother"), ("son", "daughter"), ("brother", "sister"), ("uncle", "aunt"),
            ("husband", "wife"), ("nephew", "niece"), ("lord", "lady"), ("emperor", "empress"),
            ("actor", "actress"), ("waiter", "waitress"), ("grandfather", "grandmother"),
        ],
        "forms": (["he", "his", "him", "himself", "sir", "gentleman"],
                  ["she", "her", "hers", "herself", "madam", "gentlewoman"]),
    },
    "capital": {
        "pairs": [
            ("france", "paris"), ("spain", "madrid"), ("italy", "rome"), ("germany", "berlin"),
            ("japan", "tokyo"), ("china", "beijing"), ("russia", "moscow"), ("egypt", "cairo"),
            ("greece", "athens"), ("canada", "ottawa"), ("peru", "lima"), ("kenya", "nairobi"),
            ("norway", "oslo"), ("poland", "warsaw"), ("cuba", "havana"),
        ],
        "forms": (["nation", "country", "border", "republic", "provinces", "flag"],
                  ["city", "capital", "mayor", "streets", "downtown", "suburbs"]),
    },
    "plural": {
        "pairs": [
            ("cat", "cats"), ("dog", "dogs"), ("horse", "horses"), ("bird", "birds"),
            ("apple", "apples"), ("tree", "trees"), ("house", "houses"), ("car", "cars"),
            ("book", "books"), ("river", "rivers"), ("flower", "flowers"), ("ship", "ships"),
            ("stone", "stones"), ("chair", "chairs"), ("cup", "cups"),
        ],
        "forms": (["one", "this", "single", "each", "lone", "that"],
                  ["many", "two", "these", "several", "numerous", "those"]),
    },
    "tense": {
        "pairs": [
            ("walk", "walked"), ("talk", "talked"), ("play", "played"), ("jump", "jumped"),
            ("cook", "cooked"), ("paint", "painted"), ("climb", "climbed"), ("dance", "danced"),
            ("laugh", "laughed"), ("listen", "listened"), ("watch", "watched"), ("open", "opened"),
            ("clean", "cleaned"), ("visit", "visited"), ("follow", "followed"),
        ],
        "forms": (["today", "now", "usually", "often", "always", "tomorrow"],
                  ["yesterday", "ago", "earlier", "once", "previously", "last"]),
    },
}
FUNCTION_WORDS = ["the", "a", "of", "and", "to", "in", "with", "on", "at", "by", "for", "from"]
SYLLABLES = ["ka", "lo", "mi", "ra", "tu", "ve", "so", "ni", "pe", "zu", "da", "fo", "gi", "ho", "be", "ru"]
SENTENCES_PER_WORD = 450
FEATURES = 16  # topic words of one relation; each pair gets three of them
FILLER_SENTENCES = 60_000


def pseudo_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """Distinct made-up words of two or three syllables."""
    words = []
    while len(words) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3))))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def feature_codes(rng: random.Random, features: list[str], count: int) -> list[tuple[str, ...]]:
    """``count`` triples of features, any two sharing at most one feature."""
    codes: list[tuple[str, ...]] = []
    while len(codes) < count:
        code = tuple(rng.sample(features, k=3))
        if all(len(set(code) & set(other)) <= 1 for other in codes):
            codes.append(code)
    return codes


def build(rng: random.Random) -> tuple[list[str], list[str]]:
    taken = {w for relation in RELATIONS.values() for pair in relation["pairs"] for w in pair}
    taken |= {w for relation in RELATIONS.values() for side in relation["forms"] for w in side}
    taken |= set(FUNCTION_WORDS)
    filler = pseudo_words(rng, 600, taken)
    filler_weights = [1 / (rank + 1) for rank in range(len(filler))]

    def fillers(count: int) -> list[str]:
        return rng.choices(filler, weights=filler_weights, k=count) + rng.sample(FUNCTION_WORDS, k=min(count, 2))

    sentences = []
    questions = []
    for name, relation in RELATIONS.items():
        pairs = relation["pairs"]
        questions.append(f": {name}")
        for first in pairs:
            for second in pairs:
                if first != second:
                    questions.append(f"{first[0]} {first[1]} {second[0]} {second[1]}")
        topics = feature_codes(rng, pseudo_words(rng, FEATURES, taken), len(pairs))
        for pair, topic in zip(pairs, topics):
            for side in (0, 1):
                forms = relation["forms"][side]
                for _ in range(SENTENCES_PER_WORD):
                    words = [pair[side], rng.choice(forms), *topic, *fillers(rng.randint(2, 5))]
                    rng.shuffle(words)
                    sentences.append(" ".join(words))
    for _ in range(FILLER_SENTENCES):
        sentences.append(" ".join(fillers(rng.randint(6, 14))))
    rng.shuffle(sentences)
    return sentences, questions


def main() -> None:
    sentences, questions = build(random.Random(SEED))
    here = Path(__file__).parent
    (here / "demo.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    (here / "demo-analogies.txt").write_text("\n".join(questions) + "\n", encoding="utf-8")
    tokens = sum(len(sentence.split()) for sentence in sentences)
    print(f"wrote {len(sentences):,} sentences, {tokens:,} tokens and {len(questions) - len(RELATIONS)} analogy questions")


if __name__ == "__main__":
    main()
