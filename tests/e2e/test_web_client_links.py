"""The web client's link formatter takes linear time on hostile message text.

`richText` in static/format.js turns the http(s) addresses in a message into
links. Anyone can send any text, so a pattern that backtracks (retrying from
every position of a long run) would freeze every reader's tab. Each text
below is about 100,000 characters shaped to provoke that; the formatter must
still split it correctly, and at once. `js/rich_text.mjs` runs it under Node,
whose regexp engine, unlike Chromium's, does not switch to a linear-time one
when a pattern backtracks too much, so a slow pattern shows here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "services" / "gateway" / "src" / "chat_gateway" / "static"
SCRIPT = Path(__file__).parent / "js" / "rich_text.mjs"

URL_RUN = "http://a" * 12_500
DOTS_INSIDE = "http://x" + "." * 99_991 + "y"
DOTS_AFTER = "see http://x" + "." * 99_988
PUNCTUATION_INSIDE = "http://x" + ").,;:!?]" * 12_499 + "y"
PREFIXES_ONLY = "http:// " * 12_500
WWW_RUN = "www." * 25_000
SENTENCE = "Read http://example.com/page. "
SENTENCES = SENTENCE * (100_000 // len(SENTENCE))


def link(url: str) -> list[str]:
    return ["a", url, url]


def text(value: str) -> list[str]:
    return ["text", value]


def sentences_split() -> list[list[str]]:
    parts = [text("Read ")]
    for _ in range(SENTENCES.count(SENTENCE) - 1):
        parts += [link("http://example.com/page"), text(". Read ")]
    return [*parts, link("http://example.com/page"), text(". ")]


# name: (text, how richText splits it)
HOSTILE_TEXTS: dict[str, tuple[str, list[list[str]]]] = {
    "one address run on and on": (URL_RUN, [link(URL_RUN)]),
    "dots inside an address": (DOTS_INSIDE, [link(DOTS_INSIDE)]),
    "dots after an address": (DOTS_AFTER, [text("see "), link("http://x"), text("." * 99_988)]),
    "punctuation inside an address": (PUNCTUATION_INSIDE, [link(PUNCTUATION_INSIDE)]),
    "prefixes with nothing after": (PREFIXES_ONLY, [text(PREFIXES_ONLY)]),
    "www without a scheme": (WWW_RUN, [text(WWW_RUN)]),
    "addresses ending sentences": (SENTENCES, sentences_split()),
}


def test_links_in_hostile_text_are_found_in_linear_time(node: str) -> None:
    texts = {name: value for name, (value, _) in HOSTILE_TEXTS.items()}
    run = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(texts),
        env={**os.environ, "STATIC_DIR": str(STATIC_DIR)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"node exited {run.returncode}:\n{run.stderr}"
    results = json.loads(run.stdout)

    for name, (value, expected) in HOSTILE_TEXTS.items():
        assert len(value) >= 99_000, name
        assert results[name]["parts"] == expected, name
        # A generous bound that only backtracking breaks; not a speed target.
        assert results[name]["ms"] < 2_000, (name, results[name]["ms"])
