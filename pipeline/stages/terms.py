"""Sections → their top keywords (the `terms` table), with jieba's TF-IDF.

An explicit `jieba.Tokenizer` with the project's user dictionary (`config/userdict.txt`) is built
once per process; jieba's default tokenizer is never touched. Keywords depend on the text only,
never on the extraction rules, so callers cache them by text and a rule change never recomputes them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jieba
import jieba.analyse
import regex

_NOT_A_TERM = regex.compile(r"^[\d\p{P}\p{S}a-zA-Z.]+$")


@lru_cache(maxsize=4)
def keyword_extractor(config_dir: str, cache_dir: str) -> jieba.analyse.TFIDF:
    tok = jieba.Tokenizer()
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tok.tmp_dir = cache_dir  # jieba caches its compiled dictionary here, not in /tmp
    jieba.setLogLevel(60)
    userdict = Path(config_dir) / "userdict.txt"
    if userdict.exists():
        tok.load_userdict(str(userdict))
    tfidf = jieba.analyse.TFIDF()
    tfidf.tokenizer = tok
    stop = Path(config_dir) / "stopwords.txt"
    if stop.exists():
        tfidf.stop_words |= {w.strip() for w in stop.read_text(encoding="utf-8").splitlines() if w.strip()}
    return tfidf


def text_to_terms(text: str, extractor: jieba.analyse.TFIDF, top_k: int) -> list[tuple[str, float]]:
    """Top `top_k` keywords of `text` with TF-IDF weights, best first; numbers and symbols skipped."""
    if top_k <= 0 or not text.strip():
        return []
    tags = extractor.extract_tags(text, topK=top_k * 2, withWeight=True)
    return [(w, round(float(s), 6)) for w, s in tags if not _NOT_A_TERM.match(w)][:top_k]
