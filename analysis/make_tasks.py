#!/usr/bin/env python3
"""make_tasks.py — a multiple-choice task file from any text, for `qsweep eval --tasks`.

No task data can be downloaded where qsweep is tested, so this builds tasks from a text's lines
(for the KJV texts, verses), in two modes:
  completion (default, HellaSwag-like)  the context is --context-lines lines and the first half of
      the next line (cut at a word boundary); the choices are that line's true second half and the
      second halves of --choices - 1 other lines.
  next-line  the context is --context-lines lines; the choices are the true next line and
      --choices - 1 other lines ("which of these four verses comes next").
Context lines are joined with a space; distractors and the gold position are drawn with --seed. Lines shorter than --min-chars (e.g. "Genesis 8"
chapter headings) are never a context's last line, an answer or a distractor.

Writes both formats with the same tasks (--out PREFIX gives PREFIX.jsonl and PREFIX.hellaswag.txt):
  jsonl      {"id", "context", "choices": [" " + line, ...], "gold"}
  hellaswag  llama.cpp's 6 lines per task: context, gold, four endings (needs --choices 4);
             llama.cpp scores context + " " + ending, the same string as the JSON choice.

Usage: make_tasks.py --input kjv-test.txt --out build/tasks/kjv-next [--n 200] [--seed 1]
"""
import argparse
import json
import random
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="a text file, one passage (verse) per line")
    ap.add_argument("--out", required=True, help="output prefix: PREFIX.jsonl and PREFIX.hellaswag.txt")
    ap.add_argument("--n", type=int, default=200, help="number of tasks (default 200)")
    ap.add_argument("--choices", type=int, default=4, help="choices per task (default 4; hellaswag needs 4)")
    ap.add_argument("--context-lines", type=int, default=1, help="lines of context (default 1)")
    ap.add_argument("--min-chars", type=int, default=20, help="shortest usable line (default 20)")
    ap.add_argument("--max-chars", type=int, default=300, help="longest usable line (default 300)")
    ap.add_argument("--mode", choices=["completion", "next-line"], default="completion", help="task kind (default completion)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the draws (default 1)")
    a = ap.parse_args()
    if a.choices < 2:
        sys.exit("make_tasks.py: --choices must be at least 2")

    with open(a.input, encoding="utf-8") as f:
        lines = [l.rstrip("\r\n").strip() for l in f]
    usable = [a.min_chars <= len(l) <= a.max_chars and "\t" not in l and " " in l for l in lines]
    # Candidate tasks: a usable answer line whose context lines are all non-empty.
    starts = [i for i in range(a.context_lines, len(lines))
              if usable[i] and usable[i - 1] and all(lines[j] for j in range(i - a.context_lines, i))]
    pool = [i for i in range(len(lines)) if usable[i]]
    if len(starts) < a.n or len(pool) < a.choices + a.context_lines:
        sys.exit(f"make_tasks.py: {a.input} has {len(starts)} usable positions, fewer than --n {a.n}")

    rng = random.Random(a.seed)
    picked = sorted(rng.sample(starts, a.n))

    def halves(line):  # (first half, second half), cut at the space nearest the middle
        spaces = [k for k, ch in enumerate(line) if ch == " "]
        cut = min(spaces, key=lambda k: abs(k - len(line) // 2))
        return line[:cut], line[cut + 1:]

    tasks = []
    for k, i in enumerate(picked):
        context = " ".join(lines[i - a.context_lines:i])
        answer = lines[i]
        if a.mode == "completion":
            head, answer = halves(lines[i])
            context = context + " " + head
        distract = []
        while len(distract) < a.choices - 1:
            j = rng.choice(pool)
            d = halves(lines[j])[1] if a.mode == "completion" else lines[j]
            if abs(j - i) > a.context_lines and d != answer and d not in distract:
                distract.append(d)
        gold = rng.randrange(a.choices)
        endings = distract[:gold] + [answer] + distract[gold:]
        tasks.append({"id": f"{k + 1}", "line": i + 1, "context": context, "endings": endings, "gold": gold})

    with open(a.out + ".jsonl", "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps({"id": t["id"], "context": t["context"], "choices": [" " + e for e in t["endings"]],
                                "gold": t["gold"]}, ensure_ascii=False) + "\n")
    if a.choices == 4:
        with open(a.out + ".hellaswag.txt", "w", encoding="utf-8") as f:
            for t in tasks:
                f.write("\n".join([t["context"], str(t["gold"])] + t["endings"]) + "\n")
    print(f"make_tasks.py: {len(tasks)} tasks from {a.input} -> {a.out}.jsonl"
          + (f", {a.out}.hellaswag.txt" if a.choices == 4 else ""))


if __name__ == "__main__":
    main()
