"""Dump the King James Bible from Debian's bible-kjv(-text) packages and split it.

    bible -f gen1:1-rev22:21   ->  one verse per line, "Ge1:1 In the beginning ..."

Cleaning (deterministic):
  * the "Book C:V " reference in front of every verse is stripped;
  * whitespace inside a verse is collapsed to single spaces and trimmed;
  * verses of one chapter are joined with "\n"; a chapter is one document.

Split: chapters are numbered 1..1189 in canonical order (Genesis 1 = 1,
Revelation 22 = 1189). Every 20th chapter (number % 20 == 0; 59 chapters,
Genesis 20, Genesis 40, Exodus 10, ...) is validation, the other 1130 are
training. Whole chapters are held out, so validation text is never seen in
training, and the held-out chapters are spread over both testaments.

Outputs in OUT_DIR:
  train.jsonl / val.jsonl : one JSON string (a chapter's text) per line
  train.txt               : training chapters joined by "\n" (tokenizer training input)
  split.json              : which chapters went where
"""
import json
import os
import re
import subprocess
import sys

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)

raw = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True, capture_output=True,
                     env={**os.environ, "COLUMNS": "100000"}).stdout.decode("utf-8")
ref = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")

chapters = []  # (book, chapter, [verses])
for line in raw.split("\n"):
    if not line.strip():
        continue
    m = ref.match(line)
    assert m, repr(line)
    book, ch, _verse, text = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    text = " ".join(text.split())
    if not chapters or chapters[-1][0] != book or chapters[-1][1] != ch:
        chapters.append((book, ch, []))
    chapters[-1][2].append(text)

n_verses = sum(len(c[2]) for c in chapters)
assert len(chapters) == 1189 and n_verses == 31102, (len(chapters), n_verses)

train, val, split = [], [], {"rule": "chapter number (1..1189, canonical order) % 20 == 0 -> validation",
                              "val": [], "n_train": 0, "n_val": 0}
for i, (book, ch, verses) in enumerate(chapters, start=1):
    doc = "\n".join(verses)
    if i % 20 == 0:
        val.append(doc)
        split["val"].append(f"{book} {ch}")
    else:
        train.append(doc)
split["n_train"], split["n_val"] = len(train), len(val)
split["train_chars"] = sum(len(d) for d in train)
split["val_chars"] = sum(len(d) for d in val)

for name, docs in (("train", train), ("val", val)):
    with open(os.path.join(out_dir, f"{name}.jsonl"), "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
with open(os.path.join(out_dir, "train.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(train) + "\n")
with open(os.path.join(out_dir, "split.json"), "w") as f:
    json.dump(split, f, indent=1)
print(f"chapters: {len(train)} train ({split['train_chars']} chars), {len(val)} val ({split['val_chars']} chars)")
