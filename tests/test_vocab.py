"""Counting words in bounded memory, and the token file the kept words are encoded into."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from embedcli import vocab
from embedcli.config import DEFAULTS
from embedcli.corpus import Corpus
from embedcli.vocab import WordCounts, count_limit, count_words, load_tokenizer, prepare

from .conftest import run_cli


INVISIBLE_LINE = ("Hy\u00adphen hello\u200bworld \ufeffstart x\u2060y \u200fright\u200e e\u00ad\u0301 a\u200d\u200cb "
                  "\u202eabc\u202c \U000e0001en \u0600 \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f")
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # its tag characters are kept


def test_the_word_table_never_holds_more_than_its_limit():
    counted = WordCounts(limit=100)
    sizes = []
    update = counted.counts.update

    def watched_update(words):
        update(words)
        sizes.append(len(counted.counts))

    counted.counts.update = watched_update
    generator = random.Random(1)
    for size in [1, 7, 60, 99, 500, 3, 1000, 50] * 5:
        counted.add([f"w{generator.randrange(5000)}" for _ in range(size)])
    assert counted.reductions > 0 and max(sizes) <= 100
    assert counted.tokens == sum([1, 7, 60, 99, 500, 3, 1000, 50]) * 5


def planted_corpus(path, *, top=40, rare=20_000, lines_of=10, non_ascii=False):
    """Words t0..t{top-1} seen 2000, 1960, ... times, 300 middling words seen 6 times, ``rare`` words once; shuffled."""
    generator = random.Random(7)
    prefix = "ü" if non_ascii else "t"
    truth = {f"{prefix}{rank}": 2000 - 40 * rank for rank in range(top)}
    tokens = [word for word, count in truth.items() for _ in range(count)]
    tokens += [f"m{index}" for index in range(300) for _ in range(6)]
    tokens += [f"r{index}" for index in range(rare)]
    generator.shuffle(tokens)
    lines = [" ".join(tokens[start : start + lines_of]) for start in range(0, len(tokens), lines_of)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth


@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
def test_pruning_while_counting_keeps_the_true_top_words(tmp_path, monkeypatch, tokenizer):
    path = tmp_path / "planted.txt"
    truth = planted_corpus(path, non_ascii=tokenizer == "default")
    counted = count_words(Corpus([path]), tokenizer, limit=1000)
    assert counted.reductions >= 10 and len(counted.counts) <= 1000
    assert all(counted.counts[word] > 0 for word in truth)

    monkeypatch.setattr(vocab, "count_limit", lambda max_vocab: 1000)
    cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, max_vocab=len(truth))
    encoded = prepare(Corpus([path]), cfg, tmp_path / "cache")
    assert encoded.vocabulary.words == list(truth)  # the top words, most frequent first
    assert encoded.vocabulary.counts.tolist() == list(truth.values())  # exact: counted again while encoding
    assert np.bincount(encoded.stream.tokens).tolist() == list(truth.values())


@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
def test_max_vocab_bounds_the_vocabulary(tmp_path, tokenizer):
    path = tmp_path / "planted.txt"
    planted_corpus(path, rare=2000)
    for max_vocab in (1, 25, 100):
        cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, max_vocab=max_vocab)
        encoded = prepare(Corpus([path]), cfg, tmp_path / "cache")
        assert len(encoded.vocabulary) == max_vocab
        assert encoded.vocabulary.words[0] == "t0"


def test_count_limit_grows_with_max_vocab_between_a_floor_and_a_ceiling():
    assert count_limit(0) == vocab.COUNT_CEILING == 10_000_000
    assert count_limit(100_000) == vocab.COUNT_FLOOR == 2_000_000
    assert count_limit(500_000) == 5_000_000
    assert count_limit(3_000_000) == 10_000_000
    assert count_limit(8_000_000) == 16_000_000


@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
def test_a_word_forgotten_while_counting_is_counted_exactly_and_the_tokenizer_agrees(tmp_path, monkeypatch, tokenizer):
    # 'über' is forgotten by the first reduction (20 new words overflow a table of 10), so the
    # first pass counts it 10 times, like 'yes'; encoding counts it 11 times and moves it first.
    path = tmp_path / "c.txt"
    singletons = " ".join(f"s{index}" for index in range(20))
    path.write_text(f"über {singletons}\n" + "yes " * 10 + "\n" + "ÜBER " * 5 + "\n" + "über " * 5 + "\n")
    first = "über" if tokenizer == "default" else None
    counted = count_words(Corpus([path]), tokenizer, limit=10)
    assert counted.reductions and counted.largest_forgotten == 1
    monkeypatch.setattr(vocab, "count_limit", lambda max_vocab: 10)
    encoded = prepare(Corpus([path]), DEFAULTS.with_overrides(tokenizer=tokenizer), tmp_path / "cache")
    words = encoded.vocabulary.words
    if first:
        assert counted.counts["über"] == 10
        assert words == ["über", "yes"] and encoded.vocabulary.counts.tolist() == [11, 10]
    else:  # 'ÜBER' is another word here: 'über' is seen 6 times, 'yes' 10, 'ÜBER' 5
        assert words == ["yes", "über", "ÜBER"] and encoded.vocabulary.counts.tolist() == [10, 6, 5]
    # the saved tokenizer.json encodes every line into exactly the rows of the token file
    tokenizer_json = load_tokenizer(next((tmp_path / "cache").glob("*/tokenizer.json")))
    expected = []
    for line in Corpus([path]):
        ids = tokenizer_json.encode(line, add_special_tokens=False).ids
        expected += [encoded.vocabulary.token_ids.tolist().index(token_id) for token_id in ids if token_id]
    assert encoded.stream.tokens.tolist() == expected


def test_default_tokenizer_counts_and_encodes_like_huggingface_on_mixed_text(tmp_path):
    generator = random.Random(5)
    pieces = ["Word", "word", "x_1", "3.14", "don't", "e-mail", "\x1c", "\x0b", "ΣΟΦΙΑΣ", "हिन्दी", "naïve", "ﬁne", "Ⅻ", "½", "“quoted”",
              "hy\u00adphen", "a\u200bb", "\ufeff", "\u200d", "x\u2060y", "\u202eabc", "e\u200b\u0301", "\u0600", ENGLAND]
    lines = [" ".join(generator.choice(pieces) for _ in range(generator.randint(1, 8))) for _ in range(3000)]
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    encoded = prepare(Corpus([path]), DEFAULTS.with_overrides(min_count=1), tmp_path / "cache")
    reference = vocab.new_tokenizer("default")
    reference_words = []
    for line in Corpus([path]):
        normalized = reference.normalizer.normalize_str(line)
        reference_words += [word for word, _ in reference.pre_tokenizer.pre_tokenize_str(normalized)]
    assert encoded.corpus_tokens == len(reference_words)
    words = encoded.vocabulary.words
    assert [words[row] for row in encoded.stream.tokens] == reference_words


@pytest.mark.parametrize("through", ["one pass", "huggingface", "two passes"])
def test_the_default_tokenizer_removes_invisible_format_characters(tmp_path, monkeypatch, through):
    """A soft hyphen, zero-width characters, a BOM mid-file, bidi marks: gone, as a browser shows the text."""
    if through == "huggingface":  # the one pass, through HuggingFace's normalizer instead of Python's
        monkeypatch.setattr(vocab, "_normalizes_alike", lambda character: False)
    elif through == "two passes":
        monkeypatch.setattr(vocab, "_encode_one_pass", lambda *args: None)
    path = tmp_path / "c.txt"
    path.write_text("plain words\n" + INVISIBLE_LINE + "\n", encoding="utf-8")
    encoded = prepare(Corpus([path]), DEFAULTS.with_overrides(min_count=1), tmp_path / "cache")
    expected = ["hyphen", "helloworld", "start", "xy", "right", "\u00e9", "ab", "abc", "en", "\u0600", ENGLAND]
    words = encoded.vocabulary.words
    assert [words[row] for row in encoded.stream.tokens] == ["plain", "words", *expected]
    saved = load_tokenizer(next((tmp_path / "cache").glob("*/tokenizer.json")))
    assert saved.encode(INVISIBLE_LINE, add_special_tokens=False).tokens == expected


def test_the_removed_format_characters_are_the_invisible_ones_in_both_normalizers():
    import unicodedata

    huggingface = vocab.new_tokenizer("default").normalizer.normalize_str
    for first, last in vocab.FORMAT_CHARACTERS:
        for code in range(first, last + 1):
            assert unicodedata.category(chr(code)) in ("Cf", "Cn"), hex(code)
            assert huggingface(f"a{chr(code)}b") == vocab._normalize(f"a{chr(code)}b") == "ab", hex(code)
            assert vocab._normalize(f"a{chr(code)}b", invisible=[chr(code)]) == "ab"
    for shown in ("\u0600", "\U000e0067", "\ufff9"):  # format characters that show, or spell a flag
        assert huggingface(shown) == vocab._normalize(shown) == shown
    assert vocab.new_tokenizer("whitespace").normalizer is None  # normalises nothing, by design


def test_long_lines_are_split_into_sentences_of_max_sentence_words(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(" ".join(["a", "b"] * 12) + "\nb a\n" + "a " * 10 + "\n")
    cfg = DEFAULTS.with_overrides(min_count=1, max_sentence=10, tokenizer="whitespace")
    encoded = prepare(Corpus([path]), cfg, tmp_path / "cache")
    assert encoded.stream.offsets.tolist() == [0, 10, 20, 24, 26, 36]


def _cache(folder):
    files = ("tokens.i32", "offsets.i64", "vocab.json", "tokenizer.json")
    return {name: (folder / name).read_bytes() for name in files}


@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
@pytest.mark.parametrize("max_tokens", [0, 5000])
def test_the_one_pass_encoder_equals_the_two_pass_one(tmp_path, monkeypatch, max_tokens, tokenizer):
    """Same rows, sentences, counts and tokenizer, on text with the line mark, [UNK], blank lines and odd spaces."""
    generator = random.Random(3)
    words = [f"w{index}" for index in range(300)] + ["[UNK]", "é", "a\ue000\ue001b", "\ue000\ue001", "x\u3000y",
                                                      "Don't", "e.g.", "ﬁne", "ÉCOLE", "x\u0301", "--", "A_b",
                                                      "hy\u00adphen", "a\u200bb", "\ufeffé", "\u200e", "Ä\u2060"]
    lines = []
    for _ in range(3000):
        lines.append(" ".join(generator.choice(words) for _ in range(generator.randrange(0, 12))))
    lines[100] = "  \t "
    (tmp_path / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, min_count=2, max_sentence=7, max_tokens=max_tokens)
    one = prepare(Corpus([tmp_path / "corpus.txt"]), cfg, tmp_path / "one")
    monkeypatch.setattr(vocab, "_encode_one_pass", lambda *args: None)  # the two-pass path
    two = prepare(Corpus([tmp_path / "corpus.txt"]), cfg, tmp_path / "two")
    assert one.vocabulary.words == two.vocabulary.words and "[UNK]" not in one.vocabulary.words
    assert np.array_equal(one.vocabulary.counts, two.vocabulary.counts)
    assert one.corpus_tokens == two.corpus_tokens
    assert _cache(next((tmp_path / "one").iterdir())) == _cache(next((tmp_path / "two").iterdir()))


def test_the_one_pass_encoder_hands_over_when_the_word_table_fills(tmp_path, monkeypatch):
    truth = planted_corpus(tmp_path / "corpus.txt", rare=5000)
    monkeypatch.setattr(vocab, "count_limit", lambda max_vocab: 1000)
    called = []
    two_pass = vocab._encode_counted
    monkeypatch.setattr(vocab, "_encode_counted", lambda *args: called.append(1) or two_pass(*args))
    encoded = prepare(Corpus([tmp_path / "corpus.txt"]), DEFAULTS.with_overrides(tokenizer="whitespace"), tmp_path / "cache")
    assert called and encoded.vocabulary.words[:40] == list(truth)
    assert not list(next((tmp_path / "cache").iterdir()).glob("*.tmp"))


def _parts_of_any_size(monkeypatch, processes):
    whole = Corpus.parts
    monkeypatch.setattr(Corpus, "parts", lambda self, count, smallest=0: whole(self, count, smallest=0))
    monkeypatch.setattr(vocab, "_scan_processes", lambda limit: processes)


@pytest.mark.parametrize("count", [2, 5])
@pytest.mark.parametrize("layout", ["one file", "three files", "long lines"])
def test_parts_read_exactly_the_lines_of_the_whole(tmp_path, layout, count):
    generator = random.Random(5)
    text = lambda count: "\n".join(  # noqa: E731
        " ".join(generator.choice(["a", "bé", "c\ue000\ue001", "[UNK]", "\u00a0", "d"]) for _ in range(generator.randrange(12)))
        for _ in range(count)
    )
    if layout == "one file":
        paths = [tmp_path / "a.txt"]
        paths[0].write_bytes(b"\xef\xbb\xbf" + text(4000).encode() + b"\xff\xfe bad\n")
    elif layout == "three files":
        paths = [tmp_path / f"{name}.txt" for name in "abc"]
        for path in paths:
            path.write_text(text(1500) + "\n", encoding="utf-8")
    else:  # lines over the 1 MB read block, with and without spaces, across the middle
        paths = [tmp_path / "long.txt"]
        paths[0].write_text("x" * 1_500_000 + "\n" + ("w " * 900_000) + "\n" + text(50) + "\n" + "y" * 2_500_000 + "\n", encoding="utf-8")
    corpus = Corpus(paths)
    parts = corpus.parts(count, smallest=0)
    assert parts is not None and 2 <= len(parts) <= count
    whole = list(corpus)
    assert [line for part in parts for line in part] == whole
    assert sum(part.invalid_bytes for part in parts) == corpus.invalid_bytes


@pytest.mark.parametrize("processes", [2, 4])
@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
def test_several_processes_encode_what_one_pass_and_two_passes_do(tmp_path, monkeypatch, tokenizer, processes):
    generator = random.Random(9)
    words = [f"w{index}" for index in range(400)] + ["[UNK]", "é", "a\ue000\ue001b", "\ue000\ue001", "It's", "ÀB"]
    paths = [tmp_path / f"{name}.txt" for name in "ab"]
    for path in paths:
        lines = [" ".join(generator.choice(words) for _ in range(generator.randrange(15))) for _ in range(3000)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, min_count=3, max_sentence=9)
    _parts_of_any_size(monkeypatch, processes)
    parallel = prepare(Corpus(paths), cfg, tmp_path / "parallel")
    monkeypatch.setattr(vocab, "_encode_one_pass", lambda *args: None)
    two = prepare(Corpus(paths), cfg, tmp_path / "two")
    assert parallel.vocabulary.words == two.vocabulary.words
    assert _cache(next((tmp_path / "parallel").iterdir())) == _cache(next((tmp_path / "two").iterdir()))
    assert not list(next((tmp_path / "parallel").iterdir()).glob("*.tmp"))


def test_a_corpus_read_by_several_processes_trains_quietly(tmp_path):
    """9 MB: read in parts by forked processes, which must leave signals to the CLI and print nothing."""
    generator = random.Random(11)
    words = [f"w{index}" for index in range(2000)]
    line = lambda: " ".join(generator.choices(words, k=20))  # noqa: E731
    block = "\n".join(line() for _ in range(5000)) + "\n"
    corpus = tmp_path / "big.txt"
    with open(corpus, "w", encoding="utf-8") as stream:
        while stream.tell() < 9_000_000:
            stream.write(block)
    assert Corpus([corpus]).parts(8) is not None
    result = run_cli("train", corpus, "--out", tmp_path / "model", "--epochs", "1", "--dim", "8", "--tokenizer", "whitespace")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 1, result.stderr


@pytest.mark.parametrize("tokenizer", ["whitespace", "default"])
def test_sentences_hold_exactly_the_kept_tokens_wherever_max_tokens_cuts(tmp_path, tokenizer):
    """The cut leaves empty lines after it; each sentence keeps its own kept tokens, the last one too."""
    generator = random.Random(3)
    words = [f"w{index}" for index in range(300)]
    lines = [[generator.choice(words) for _ in range(generator.randrange(1, 12))] for _ in range(1500)]
    (tmp_path / "c.txt").write_text("\n".join(map(" ".join, lines)) + "\n", encoding="utf-8")
    for max_tokens in range(2000, 2030):
        cfg = DEFAULTS.with_overrides(tokenizer=tokenizer, min_count=8, max_tokens=max_tokens, max_sentence=10_000)
        encoded = prepare(Corpus([tmp_path / "c.txt"]), cfg, tmp_path / "cache")
        row = {word: index for index, word in enumerate(encoded.vocabulary.words)}
        cut = [word for line in lines for word in line][:max_tokens]
        expected, start = [], 0
        for line in lines:
            kept = [row[word] for word in cut[start : start + len(line)] if word in row]
            start += len(line)
            if kept:
                expected.append(kept)
        offsets = encoded.stream.offsets.tolist()
        tokens = encoded.stream.tokens.tolist()
        assert [tokens[a:b] for a, b in zip(offsets, offsets[1:])] == expected and offsets[-1] == len(tokens)


def test_a_reused_tokenizers_unknown_token_is_never_a_word(tmp_path, demo_model):
    path = tmp_path / "c.txt"
    path.write_text("the king and the zebra of quux\n" * 10)
    out = tmp_path / "m"
    trained = run_cli("train", path, "--tokenizer", demo_model / "tokenizer.json", "--min-count", "1", "--epochs", "1", "--out", out, "-q")
    assert trained.code == 0, trained.stderr
    assert set(json.loads((out / "words.json").read_text())) == {"the", "king", "and", "of"}
    assert run_cli("lookup", "[UNK]", "--model", out).code != 0

    path.write_text("zebra quux\n" * 10)
    refused = run_cli("train", path, "--tokenizer", demo_model / "tokenizer.json", "--min-count", "1", "--out", tmp_path / "n", "-q")
    assert refused.code != 0 and "does not know the corpus's words" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_a_corpus_rewritten_to_the_same_size_and_time_is_encoded_again(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("cat sat\n" * 10)
    cfg = DEFAULTS.with_overrides(min_count=1)
    first = prepare(Corpus([path]), cfg, tmp_path / "cache")
    times = path.stat()
    path.write_text("dog ran\n" * 10)  # same size
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))  # as `touch -r` or a copy keeping times would
    again = prepare(Corpus([path]), cfg, tmp_path / "cache")
    assert first.vocabulary.words == ["cat", "sat"]
    assert not again.cached and again.vocabulary.words == ["dog", "ran"]


def test_the_token_cache_is_built_aside_and_renamed_into_place_whole(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_text("the cat sat\n" * 10)
    corpus, cfg, root = Corpus([path]), DEFAULTS.with_overrides(min_count=1), tmp_path / "cache"
    final = root / vocab.cache_key(corpus, cfg)
    stale = root / f"{vocab.BUILDING_PREFIX}0123-killed"  # left by a run killed while writing
    stale.mkdir(parents=True)
    (stale / "tokens.i32").write_bytes(b"\0" * 8)
    seen = []
    write = vocab._write_vocabulary

    def watched(folder, *args):
        seen.append((folder, final.exists(), stale.exists()))
        write(folder, *args)

    monkeypatch.setattr(vocab, "_write_vocabulary", watched)
    encoded = prepare(corpus, cfg, root)
    [(building, final_existed, stale_existed)] = seen
    assert building.parent == root and building.name.startswith(vocab.BUILDING_PREFIX)
    assert not final_existed and not stale_existed  # nothing under the final name until it is whole
    assert sorted(path.name for path in root.iterdir()) == [final.name]
    assert sorted(path.name for path in final.iterdir()) == sorted(vocab.CACHE_FILES)
    assert Path(encoded.stream.tokens.filename) == final / "tokens.i32"  # mapped from where it stays
    stale.mkdir()  # a run killed while tokenizing another corpus: a reuse of the cache clears it too
    assert prepare(corpus, cfg, root).cached and not stale.exists()

    (final / "vocab.json").unlink()  # a folder missing a file (a partial copy) is no cache: encoded again
    monkeypatch.setattr(vocab, "_write_vocabulary", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        prepare(corpus, cfg, root)
    assert [path.name for path in root.iterdir()] == [final.name]  # the unfinished build is gone
    monkeypatch.setattr(vocab, "_write_vocabulary", write)
    again = prepare(corpus, cfg, root)
    assert not again.cached and again.vocabulary.words == encoded.vocabulary.words


@pytest.mark.skipif(sys.platform != "linux", reason="scanning processes are forked on Linux only")
def test_scanning_processes_die_with_a_killed_parent():
    """kill -9 of a training while it tokenized left its scanning processes to print BrokenPipeError tracebacks."""
    import ctypes
    import multiprocessing

    def death_signal(queue):
        vocab._leave_signals_to_parent(os.getppid())
        value = ctypes.c_int()
        ctypes.CDLL("libc.so.6").prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
        queue.put(value.value)

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=death_signal, args=(queue,))
    process.start()
    assert queue.get(timeout=30) == signal.SIGKILL
    process.join()
