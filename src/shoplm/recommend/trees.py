"""Gradient-boosted trees served without LightGBM: the ensemble as an ONNX graph run by ONNX Runtime.

Training uses LightGBM; :func:`lightgbm_to_onnx` turns the trained booster's trees into one
``ai.onnx.ml`` ``TreeEnsembleRegressor`` node (done once, when the model is fitted), and
:class:`TreeScorer` runs it. A serving process then imports ONNX Runtime (a quarter second),
not LightGBM and scikit-learn (over a second), and a call over a few hundred candidates takes
tens of microseconds.

Example:
    >>> import lightgbm as lgb, numpy as np                             # doctest: +SKIP
    >>> x = np.random.rand(200, 3); y = x[:, 0] > 0.5                   # doctest: +SKIP
    >>> booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y), 10)  # doctest: +SKIP
    >>> scorer = TreeScorer(lightgbm_to_onnx(booster))                  # doctest: +SKIP
    >>> np.allclose(scorer.predict(x), booster.predict(x), atol=1e-5)   # doctest: +SKIP
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shoplm.errors import InputError
from shoplm.recommend.onnx import serving_session

#: LightGBM's split decisions a TreeEnsembleRegressor node can express.
_MODES = {"<=": "BRANCH_LEQ", "<": "BRANCH_LT"}


def lightgbm_to_onnx(booster: Any) -> bytes:
    """The booster's trees as a serialized ONNX model: input ``features`` (float, n x k), output ``scores``.

    Args:
        booster: a trained ``lightgbm.Booster`` with numerical splits only.

    Returns:
        The ONNX model's bytes.

    Raises:
        InputError: the booster has a split this conversion does not support (categorical).
    """
    import onnx
    from onnx import TensorProto, helper

    dump = booster.dump_model()
    n_features = int(dump["max_feature_idx"]) + 1
    nodes: dict[str, list[Any]] = {
        key: []
        for key in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    for tree in dump["tree_info"]:
        tree_id = int(tree["tree_index"])
        counter = iter(range(1 << 30))

        def visit(node: dict[str, Any], tree_id: int = tree_id, counter: Any = counter) -> int:
            node_id = next(counter)
            nodes["nodes_treeids"].append(tree_id)
            nodes["nodes_nodeids"].append(node_id)
            if "leaf_value" in node or "split_feature" not in node:
                nodes["nodes_featureids"].append(0)
                nodes["nodes_values"].append(0.0)
                nodes["nodes_modes"].append("LEAF")
                nodes["nodes_truenodeids"].append(0)
                nodes["nodes_falsenodeids"].append(0)
                nodes["nodes_missing_value_tracks_true"].append(0)
                nodes["target_treeids"].append(tree_id)
                nodes["target_nodeids"].append(node_id)
                nodes["target_ids"].append(0)
                nodes["target_weights"].append(float(node.get("leaf_value", 0.0)))
                return node_id
            mode = _MODES.get(str(node.get("decision_type", "<=")))
            if mode is None:
                raise InputError(f"tree {tree_id}: split {node.get('decision_type')!r} cannot be served as ONNX")
            position = len(nodes["nodes_modes"])
            nodes["nodes_featureids"].append(int(node["split_feature"]))
            nodes["nodes_values"].append(float(node["threshold"]))
            nodes["nodes_modes"].append(mode)
            nodes["nodes_truenodeids"].append(0)  # filled in once the children have ids
            nodes["nodes_falsenodeids"].append(0)
            nodes["nodes_missing_value_tracks_true"].append(int(bool(node.get("default_left", True))))
            left = visit(node["left_child"])
            right = visit(node["right_child"])
            nodes["nodes_truenodeids"][position] = left
            nodes["nodes_falsenodeids"][position] = right
            return node_id

        visit(tree["tree_structure"])
    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        ["features"],
        ["scores"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        **nodes,
    )
    graph = helper.make_graph(
        [ensemble],
        "shoplm_trees",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)], ir_version=9
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


class TreeScorer:
    """Runs a tree ensemble made by :func:`lightgbm_to_onnx` on one thread.

    Args:
        model: the ONNX model's bytes.
    """

    def __init__(self, model: bytes) -> None:
        self._session = serving_session(model)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The ensemble's score of each row of ``features`` (float64, one per row)."""
        rows = np.ascontiguousarray(features, dtype=np.float32)
        if len(rows) == 0:
            return np.zeros(0)
        (scores,) = self._session.run(None, {"features": rows})
        return scores[:, 0].astype(np.float64)
