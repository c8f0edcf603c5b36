"""Fuzzing every reader: whatever the bytes, the answer is a result or an EmbedcliError, never another exception.

Readers covered: the corpus (files of any bytes, compressed-looking or not, through ``Corpus`` and
``vocab.prepare``), config files (``load_config``), the model directory (``store.open_model``,
``store.load_model``, ``embedcli.load`` with each file mutated, with and without the checksums
recomputed so that the parsers themselves are reached), imported vectors (``import_vectors`` in
every format), evaluation files (``evaluate_analogies``, ``evaluate_pairs``) and a training
checkpoint's state.json (``train.resume``).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedcli
from embedcli import store
from embedcli.config import FIELDS, TrainConfig, load_config
from embedcli.corpus import Corpus
from embedcli.errors import EmbedcliError
from embedcli.evaluate import evaluate_analogies, evaluate_pairs
from embedcli.export import IMPORT_FORMATS, import_vectors
from embedcli.vocab import new_tokenizer, prepare

FUZZ = settings(
    max_examples=int(os.environ.get("EMBEDCLI_FUZZ_EXAMPLES", "60")),  # raise it to hunt for new bugs
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
WORDS = ["king", "queen", "Café", "man", "woman", "paris", "france", "ß", "a", "the"]
MAGIC = [b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", b"BZh9", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"\xef\xbb\xbf", b"\0"]


@contextmanager
def _folder() -> Iterator[Path]:
    """A fresh folder per example (pytest's tmp_path is shared by all examples of one test)."""
    with tempfile.TemporaryDirectory(prefix="embedcli-fuzz-") as name:
        yield Path(name)


def _survives(run) -> None:
    """``run()`` returns or raises EmbedcliError; any other exception fails the test."""
    try:
        run()
    except EmbedcliError:
        pass


# --- the corpus ------------------------------------------------------------------------------

lines = st.lists(st.text(max_size=40), max_size=30)
separators = st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "", "\n\n", "\x0b", "\u2028"])


@st.composite
def corpus_bytes(draw) -> bytes:
    """Raw bytes, or text lines joined by any line break, maybe behind a compressed-looking header."""
    if draw(st.booleans()):
        body = draw(st.binary(max_size=2000))
    else:
        body = draw(separators).join(draw(lines)).encode("utf-8", errors="surrogatepass")
    return draw(st.sampled_from(MAGIC)) + body


COMPRESSORS = {"": None, ".txt": None, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


@FUZZ
@given(data=corpus_bytes(), suffix=st.sampled_from(list(COMPRESSORS)), compress=st.booleans(),
       tokenizer=st.sampled_from(["default", "whitespace"]), max_tokens=st.sampled_from([0, 1, 7]))
def test_any_corpus_bytes_read_or_fail_clearly(data, suffix, compress, tokenizer, max_tokens):
    with _folder() as folder:
        path = folder / f"corpus{suffix}"
        compressor = COMPRESSORS[suffix]
        if compress and compressor is not None:
            packed = compressor(data)
            data = packed[: len(packed) * 2 // 3] if len(data) % 3 == 0 else packed  # sometimes cut short
        path.write_bytes(data)
        cfg = TrainConfig(min_count=1, tokenizer=tokenizer, max_tokens=max_tokens, max_sentence=2)

        def run() -> None:
            corpus = Corpus([path], max_words=max_tokens)
            assert all(line and not line.isspace() for line in corpus)
            encoded = prepare(corpus, cfg, folder / "cache")
            assert len(encoded.vocabulary) >= 1 and encoded.stream.offsets[-1] == len(encoded.stream)
            assert not max_tokens or encoded.corpus_tokens <= max_tokens

        _survives(run)


@FUZZ
@given(text=st.lists(st.text(alphabet=st.sampled_from("ab c\n\té\u00a0\u3000.,\u00ad\u200b\ufeff"), max_size=30), max_size=20))
def test_max_tokens_cuts_the_same_tokens_in_every_pass(text):
    with _folder() as folder:
        path = folder / "corpus.txt"
        path.write_text("\n".join(text), encoding="utf-8")
        for tokenizer in ("whitespace", "default"):
            full = limited = None
            try:
                full = prepare(Corpus([path]), TrainConfig(min_count=1, tokenizer=tokenizer), folder / "full")
            except EmbedcliError:
                pass
            try:
                limited = prepare(
                    Corpus([path], max_words=5), TrainConfig(min_count=1, tokenizer=tokenizer, max_tokens=5), folder / "cut"
                )
            except EmbedcliError:
                pass
            if limited is not None:
                assert full is not None and limited.corpus_tokens == min(5, full.corpus_tokens)
                assert sum(limited.vocabulary.counts) == len(limited.stream) <= 5


# --- config files ----------------------------------------------------------------------------

toml_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=True).map(lambda value: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))),
    st.booleans().map(lambda value: str(value).lower()),
    st.text(max_size=20).map(json.dumps),
    st.just("[1, 2]"),
    st.just("{ a = 1 }"),
)
keys = st.one_of(st.sampled_from(list(FIELDS)), st.text(min_size=1, max_size=10).map(json.dumps))


@FUZZ
@given(
    settings_text=st.lists(st.tuples(keys, toml_values), max_size=6).map(
        lambda pairs: "".join(f"{key} = {value}\n" for key, value in pairs)
    ),
    noise=st.one_of(st.just(b""), st.binary(max_size=200)),
    as_bytes=st.booleans(),
)
def test_any_config_file_loads_or_fails_clearly(settings_text, noise, as_bytes):
    with _folder() as folder:
        path = folder / "settings.toml"
        path.write_bytes(noise if as_bytes else settings_text.encode("utf-8", errors="surrogatepass") + noise[:3])

        def run() -> None:
            assert isinstance(load_config(path), TrainConfig)

        _survives(run)


# --- the model directory ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two small model directories: vectors imported as written (whitespace tokenizer), and the same
    with the default tokenizer (NFKC + lowercase), the one `train` writes."""
    folder = tmp_path_factory.mktemp("fuzz-models")
    source = folder / "vectors.txt"
    rows = [f"{word} " + " ".join(f"{(row * 7 + column) % 5 - 2}.5" for column in range(4)) for row, word in enumerate(WORDS)]
    source.write_text(f"{len(WORDS)} 4\n" + "\n".join(rows) + "\n", encoding="utf-8")
    import_vectors(source, folder / "imported")
    shutil.copytree(folder / "imported", folder / "default")
    (folder / "default" / store.TOKENIZER).write_text(new_tokenizer("default", WORDS).to_str(), encoding="utf-8")
    _rehash(folder / "default")
    return {"imported": folder / "imported", "default": folder / "default"}


def _rehash(model_dir: Path) -> None:
    """Write each file's true sha256 into config.json, so that a mutated file reaches its parser."""
    config_path = model_dir / store.CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["files"] = {
        name: hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        for name in (store.WEIGHTS, store.TOKENIZER, store.WORDS)
    }
    config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


def _query(model_dir: Path) -> None:
    """Every way of reading a model directory, and the queries that parse its files lazily."""
    store.load_model(model_dir)
    store.open_model(model_dir).verified()
    vectors = embedcli.load(str(model_dir))
    for word in vectors.words[:2] + ["KING", "no-such-word"]:
        if word in vectors:
            vectors.most_similar(word, topn=3)
            vectors.vector(word)
    vectors.close_matches("quen")
    if len(vectors) >= 3:
        vectors.analogy(vectors.words[0], vectors.words[1], vectors.words[2], method="mul")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=10,
)


def _mutate_json(value, path: list, replacement):
    """``value`` with the item at ``path`` (indices taken modulo each container's size) replaced."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate_json(value[key], path[1:], replacement)
    return copy


def _flip_bytes(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    mutable = bytearray(data)
    for position, value in flips:
        if mutable:
            mutable[position % len(mutable)] = value
    return bytes(mutable[:cut] if cut is not None else mutable)


mutations = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["imported", "default"]),
        "file": st.sampled_from([store.CONFIG, store.WORDS, store.TOKENIZER, store.WEIGHTS]),
        "how": st.sampled_from(["bytes", "json", "header"]),
        "flips": st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
        "cut": st.one_of(st.none(), st.integers(min_value=0, max_value=4000)),
        "path": st.lists(st.integers(min_value=0, max_value=50), max_size=4),
        "replacement": json_values,
        "rehash": st.booleans(),
    }
)


def _mutated(original: bytes, name: str, mutation: dict) -> bytes:
    if mutation["how"] == "bytes":
        return _flip_bytes(original, mutation["flips"], mutation["cut"])
    if name == store.WEIGHTS:  # the safetensors header: 8-byte length, then JSON
        length = int.from_bytes(original[:8], "little")
        header = json.loads(original[8 : 8 + length])
        if mutation["how"] == "header":
            encoded = json.dumps(_mutate_json(header, mutation["path"], mutation["replacement"])).encode()
            encoded += b" " * (-len(encoded) % 8)
            return len(encoded).to_bytes(8, "little") + encoded + original[8 + length :]
        return _flip_bytes(original[:8], mutation["flips"], None) + original[8:]
    document = json.loads(original)
    return json.dumps(_mutate_json(document, mutation["path"], mutation["replacement"]), ensure_ascii=False).encode(
        "utf-8", errors="surrogatepass"
    )


@FUZZ
@given(mutation=mutations)
def test_any_damaged_model_directory_loads_or_fails_clearly(models, mutation):
    with _folder() as folder:
        model_dir = folder / "model"
        shutil.copytree(models[mutation["model"]], model_dir)
        path = model_dir / mutation["file"]
        path.write_bytes(_mutated(path.read_bytes(), mutation["file"], mutation))
        if mutation["rehash"] and mutation["file"] != store.CONFIG:
            _rehash(model_dir)
        _survives(lambda: _query(model_dir))


@FUZZ
@given(mutation=mutations.filter(lambda mutation: mutation["file"] != store.CONFIG), header_fields=st.lists(
    st.tuples(st.sampled_from(["vectors", "norms", "counts", "token_ids", "__metadata__"]),
              st.sampled_from(["dtype", "shape", "data_offsets"]), json_values), max_size=3))
def test_safetensors_header_fields_with_true_checksums(models, mutation, header_fields):
    with _folder() as folder:
        model_dir = folder / "model"
        shutil.copytree(models[mutation["model"]], model_dir)
        weights = model_dir / store.WEIGHTS
        original = weights.read_bytes()
        length = int.from_bytes(original[:8], "little")
        header = json.loads(original[8 : 8 + length])
        for tensor, key, value in header_fields:
            if isinstance(header.get(tensor), dict):
                header[tensor][key] = value
            else:
                header[tensor] = value
        encoded = json.dumps(header).encode()
        encoded += b" " * (-len(encoded) % 8)
        weights.write_bytes(len(encoded).to_bytes(8, "little") + encoded + original[8 + length :])
        _rehash(model_dir)
        _survives(lambda: _query(model_dir))


# --- imported vectors ------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(width=32).map(repr), st.integers(-5, 5).map(str), st.sampled_from(["nan", "inf", "-", "1e99", "0x1", "", "é"])
)


@st.composite
def vectors_file(draw) -> bytes:
    """Arbitrary bytes, or something shaped like word2vec text/binary with damage here and there."""
    kind = draw(st.sampled_from(["bytes", "text", "binary"]))
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    count = draw(st.integers(0, 4))
    dim = draw(st.integers(0, 4))
    header = draw(st.sampled_from([f"{count} {dim}\n", "", f"{count} {dim} 1\n", f"{count}\n", "99999999999 99999999\n", "1 4294967296\n"]))
    out = header.encode()
    for _ in range(draw(st.integers(0, 5))):
        word = draw(st.text(max_size=6)).encode("utf-8", errors="surrogatepass")
        if kind == "text":
            values = draw(st.lists(numbers, min_size=max(dim - 1, 0), max_size=dim + 1))
            out += word + b" " + " ".join(values).encode() + draw(st.sampled_from([b"\n", b"\r\n", b" \n", b""]))
        else:
            out += word + b" " + draw(st.binary(min_size=4 * dim, max_size=4 * dim + 2)) + b"\n"
    return out


@FUZZ
@given(data=vectors_file(), fmt=st.sampled_from(IMPORT_FORMATS), limit=st.integers(0, 3))
def test_any_vectors_file_imports_or_fails_clearly(data, fmt, limit):
    with _folder() as folder:
        path = folder / "vectors.vec"
        path.write_bytes(data)

        def run() -> None:
            result = import_vectors(path, folder / "model", fmt=fmt, limit=limit)
            vectors = embedcli.load(str(folder / "model"))
            assert len(vectors) == result.rows and vectors.dim == result.dim

        _survives(run)


# --- evaluation files ------------------------------------------------------------------------


@st.composite
def evaluation_file(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    vocabulary = st.sampled_from(WORDS + ["", ":", "#", "x", "1.5", "nan", "inf", "é"])
    rows = draw(st.lists(st.lists(vocabulary, max_size=5), max_size=12))
    return "\n".join(draw(st.sampled_from([" ", "\t", ": "])).join(row) for row in rows).encode()


@FUZZ
@given(data=evaluation_file(), restrict=st.sampled_from([1, 2, 3, 300_000]))
def test_any_evaluation_file_scores_or_fails_clearly(models, data, restrict):
    vectors = embedcli.load(str(models["default"]))
    with _folder() as folder:
        path = folder / "evaluation.txt"
        path.write_bytes(data)
        _survives(lambda: evaluate_analogies(vectors, path, restrict_vocab=restrict))
        _survives(lambda: evaluate_pairs(vectors, path, restrict_vocab=restrict))


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory) -> Path:
    """A folder holding the checkpoint of an unfinished training (the one written after epoch 1 of 2)."""
    import embedcli.train

    folder = tmp_path_factory.mktemp("checkpointed")
    corpus = folder / "corpus.txt"
    corpus.write_text(" ".join(WORDS * 3) + "\n" * 2 + " ".join(reversed(WORDS * 3)) + "\n", encoding="utf-8")
    keep = embedcli.train.remove_checkpoint
    embedcli.train.remove_checkpoint = lambda out_dir: None
    try:
        embedcli.train.train([corpus], TrainConfig(dim=8, epochs=2, min_count=1, threads=1), out_dir=folder / "model", progress=False)
    finally:
        embedcli.train.remove_checkpoint = keep
    for name in (store.CONFIG, store.WEIGHTS, store.TOKENIZER, store.WORDS):
        (folder / "model" / name).unlink()
    assert (folder / "model" / store.CHECKPOINT / "state.json").is_file()
    return folder / "model"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**12) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(key=st.sampled_from(["config", "corpus", "workers", "world_size", "positions", "done", "loss", "history",
                            "evaluations", "seconds", "format", "version", "weights", "sha256", "generation"]),
       value=json_values, raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_any_damaged_checkpoint_resumes_or_fails_clearly(checkpointed, key, value, raw):
    from embedcli.train import resume

    with _folder() as scratch:
        copy = scratch / "model"
        shutil.copytree(checkpointed, copy)
        path = copy / store.CHECKPOINT / "state.json"
        if raw is not None:
            path.write_bytes(raw)
        else:
            state = json.loads(path.read_text(encoding="utf-8"))
            state[key] = value
            path.write_text(json.dumps(state), encoding="utf-8")
        _survives(lambda: resume(copy, progress=False))
