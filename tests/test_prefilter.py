"""Soundness of the extractors' quick rejections (pipeline.stages.normalise): a pre-filter may only skip
a pattern on a text the pattern cannot match, or else the rows change.

Four pre-filters are checked, for every pattern of every rule file:
- `may_match` / `quick_check`: a one-class scan of the text;
- `Screen`: one look at a text for the characters the rules of a list need, then set tests
  (its look must also hold for a part of the text, which the extractors rely on);
- `first_chars`: every match starts on one of these characters;
- `pair_check`: every match holds two given characters side by side.

The texts: every paragraph of the seed drafts and of synthetic drafts recombined from them
(bench/corpus.py), the same joined across line breaks, and random mutations of each rule's
examples (characters of the pattern, numerals and punctuation inserted or deleted). The same
checks run as a script, with more drafts and mutations: `python tests/test_prefilter.py --fuzz 5000`.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from pipeline.prefilter import Screen, first_chars, may_match, pair_check  # noqa: E402
from pipeline.stages.extract import load_rules  # noqa: E402

FUZZ = 300  # mutations per rule in the test suite
DOCS = 12  # synthetic drafts in the test suite


def _texts(n_docs: int) -> list[str]:
    import corpus

    seeds = corpus.seed_texts()
    split = [corpus.split_seed(t) for t in seeds]
    docs = seeds + [corpus.make_text_doc(i, split) for i in range(n_docs)]
    paras = [p for t in docs for p in t.split("\n") if p]
    # whole sections' worth of text too (the extractors screen a section, then its windows)
    joined = ["".join(t.split("\n")[k:k + 12]) for t in docs for k in range(0, t.count("\n"), 12)]
    return paras + joined


def _mutants(rule, n: int, rng: random.Random) -> list[str]:
    alphabet = sorted(set(rule.pattern) | set("0123456789一二三年月日的，。（）：、 \ue000")
                      | set("".join(rule.examples)))
    out = []
    for _ in range(n):
        s = list(rng.choice(rule.examples)) if rule.examples and rng.random() < 0.7 else []
        for _ in range(rng.randint(0, 6)):
            if rng.random() < 0.4 and s:
                del s[rng.randrange(len(s))]
            else:
                s.insert(rng.randint(0, len(s)), rng.choice(alphabet))
        out.append("".join(s))
    return out


def unsound(n_docs: int = DOCS, fuzz: int = FUZZ) -> tuple[list[tuple[str, str, str]], dict]:
    """[(check, rule id, text)] for every text a pre-filter rejects while the pattern matches it."""
    rules = load_rules(ROOT / "config")
    texts = _texts(n_docs)
    rng = random.Random(1)
    bad: list[tuple[str, str, str]] = []
    stats = {"pairs": 0, "rejected": 0, "screened_out": 0}
    for f in rules.files.values():
        rs = f.all_rules()
        sc = Screen(rs)
        per_rule = {r.id: _mutants(r, fuzz, rng) for r in rs}
        for r in rs:
            fc = first_chars(r.pattern)
            pairs = pair_check(r.pattern)
            for s in texts + per_rule[r.id]:
                stats["pairs"] += 1
                matches = list(r.rx.finditer(s, overlapped=True))
                if not may_match(r.pattern, s):
                    stats["rejected"] += 1
                    if matches:
                        bad.append(("may_match", r.id, s))
                if fc is not None and any(not m.group() or s[m.start()] not in fc for m in matches):
                    bad.append(("first_chars", r.id, s))
                if pairs is not None and matches and pairs(s) is None:
                    bad.append(("pair_check", r.id, s))
        # the Screen: a rule it leaves out of a text's selection never matches the text, nor any
        # part of it (the look of a section stands for its windows)
        for s in texts + [x for v in per_rule.values() for x in v]:
            if not sc.any_possible(s) and any(r.rx.search(s) for r in rs):
                bad.append(("screen (any_possible)", next(r.id for r in rs if r.rx.search(s)), s))
            allowed = sc.allowed(sc.look(s))
            for r, ok in zip(rs, allowed):
                if ok:
                    continue
                stats["screened_out"] += 1
                if r.rx.search(s):
                    bad.append(("screen", r.id, s))
                k = len(s) // 2
                if r.rx.search(s[:k]) or r.rx.search(s[k:]):
                    bad.append(("screen (part)", r.id, s))
    return bad, stats


def test_prefilters_never_reject_a_text_the_pattern_matches():
    bad, stats = unsound()
    assert stats["rejected"] > 0 and stats["screened_out"] > 0  # the filters do reject
    assert not bad, "\n".join(f"{check}: {rid}: {s!r}" for check, rid, s in bad[:20])


def test_pair_check():
    check = pair_check(r"(?<![第])(?P<num>[一二三]+)(?P<unit>个|家)(?![化])")
    assert check is not None
    assert check("建成三个") and check("两家，一个") and not check("一批企业三") and not check("三 个")
    assert pair_check(r"[0-9]+\s*个") is None  # \s* between: nothing is adjacent for sure


@pytest.mark.parametrize("pattern, first", [
    (r"(?<![0-9])[0-9]+年", set("0123456789")),
    (r"^(?:牵头|配合)单位：", {"牵", "配"}),
    (r"(?:约|近)?\s*[0-9]", None),  # \s* is not expanded: unknown
    (r"a?b", {"a", "b"}),
    (r"a*", None),  # matches the empty string
    (r"(?i)ab", None),  # flags are not analysed
    (r"\Gab", None),
    (r"(?=x)ab|c", {"a", "c"}),
])
def test_first_chars(pattern, first):
    got = first_chars(pattern)
    assert (None if got is None else set(got)) == first


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=int, default=2000, help="mutations per rule")
    ap.add_argument("--docs", type=int, default=100, help="synthetic drafts")
    a = ap.parse_args()
    found, st = unsound(a.docs, a.fuzz)
    print(f"{st['pairs']} pattern×text pairs, {st['rejected']} rejected by may_match, "
          f"{st['screened_out']} screened out; {len(found)} unsound rejections")
    for check, rid, s in found[:20]:
        print(f"  {check}: {rid}: {s!r}")
    sys.exit(1 if found else 0)
