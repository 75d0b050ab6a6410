"""Convert ../shared/data/amazon-games (RecBole-style .inter files) to the sequence layout.

The test line of each user holds the history up to the validation target followed by the
test target, so a user's whole sequence is the test history plus its target. Writes
``sequences.txt`` (``user item item ...``) and ``items.tsv`` (``item_id<TAB>title``) into OUT.

    python benchmarks/seqrec/prepare_amazon_games.py ../shared/data/amazon-games /tmp/amazon-games-seq
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def convert(source: Path, out: Path) -> tuple[int, int]:
    out.mkdir(parents=True, exist_ok=True)
    users = 0
    with (source / "test.inter").open(encoding="utf-8") as handle, (out / "sequences.txt").open("w") as target:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)  # user_id:token  item_id_list:token_seq  item_id:token
        for user, history, item in reader:
            # Shift ids by one: 0 is a real item here, but a padding id in many sequence tools.
            sequence = [str(int(i) + 1) for i in history.split()] + [str(int(item) + 1)]
            target.write(f"{int(user) + 1} {' '.join(sequence)}\n")
            users += 1
    items = 0
    with (source / "items.tsv").open(encoding="utf-8") as handle, (out / "items.tsv").open("w") as target:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        target.write("item_id\ttitle\n")
        for row in reader:
            title = row[-1].replace("\t", " ").replace("\n", " ")
            target.write(f"{int(row[0]) + 1}\t{title}\n")
            items += 1
    return users, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    users, items = convert(args.source, args.out)
    print(f"wrote {users} sequences and {items} item titles to {args.out}")


if __name__ == "__main__":
    main()
