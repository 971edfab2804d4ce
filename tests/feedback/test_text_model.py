"""The theme and sentiment model: storage without pickle, the predictions CSV, training."""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from engage.feedback.text import fitting
from engage.feedback.text import model as tm
from engage.feedback.text.model import (
    FORMAT,
    FORMAT_VERSION,
    SENTIMENT_LABELS,
    Example,
    ModelFormatError,
    ThemeModel,
    default_model,
    evaluate,
    grouped_split,
    question_kind,
    read_training_csv,
    train,
    write_predictions_csv,
)

TEXT_DIR = Path(tm.__file__).parent
#: The shipped model's budget on disk (manifest + arrays); docs/themes-model.md says so.
SIZE_BUDGET = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def base() -> tuple[list[Example], list[str]]:
    return read_training_csv(tm.BASE_DATA)


@pytest.fixture(scope="module")
def subset(base: tuple[list[Example], list[str]]) -> list[Example]:
    """About a third of the shipped data: enough to train on in well under a second."""
    return base[0][::3]


@pytest.fixture(scope="module")
def small_model(subset: list[Example], base: tuple[list[Example], list[str]]) -> ThemeModel:
    return train(subset, columns=base[1])


def _predict_all(model: ThemeModel, examples: list[Example]) -> list[tm.Prediction]:
    return model.predict([ex.text for ex in examples], [ex.question for ex in examples])


# --- data -------------------------------------------------------------------------------------


def test_shipped_training_data_is_the_framework_csv(base):
    examples, columns = base
    assert len(examples) == 4993
    assert len(columns) == 50
    assert columns[0] == "Not assigned" and columns[-1] == "Positive experience & gratitude"
    assert sum(ex.sentiment is None for ex in examples) == 25
    assert all(ex.themes <= set(columns) for ex in examples)
    first = examples[0]
    assert (first.id, first.group, first.question) == (
        "NEAS PTS 537 - Q1",
        "NEAS PTS 537",
        "FFT Why?",
    )


def test_read_training_csv_refuses_a_theme_value_other_than_0_or_1(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Comment ID,FFT answer,Staff\nc1,hello,yes\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not 0 or 1"):
        read_training_csv(path)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("FFT Why?", "nonspecific"),
        ("Please tell us why", "nonspecific"),
        (
            "Please describe any things about the 111 service that \n"
            "you were particularly satisfied and/or dissatisfied with",
            "nonspecific",
        ),
        ("What was good?", "what_good"),
        ("How could we improve?", "could_improve"),
        ("What could we do better?", "could_improve"),
        ("Is there anything we could have done better?", "could_improve"),
        ("What did you like best about your visit?", "what_good"),
        ("What one thing should we change?", "could_improve"),
        ("Is there anything else you would like to tell us?", "nonspecific"),
        ("Any other comments?", "nonspecific"),
        (None, "nonspecific"),
    ],
)
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def test_grouped_split_keeps_each_respondent_on_one_side(base):
    examples, _columns = base
    rest, held = grouped_split(examples)
    assert grouped_split(examples) == (rest, held)
    assert {ex.group for ex in rest}.isdisjoint({ex.group for ex in held})
    assert 0.15 < len(held) / len(examples) < 0.25
    assert grouped_split(examples, salt="other")[1] != held


# --- storage ----------------------------------------------------------------------------------


def test_logistic_and_softmax_agree_with_scipy_without_overflowing():
    """Prediction uses numpy's own logistic and softmax so that one comment need not
    import scipy.special; they must give SciPy's numbers, extremes included."""
    import warnings

    from scipy.special import expit, softmax

    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(0, 6, (50, 9)), np.full((1, 9), 1000.0),
                        np.full((1, 9), -1000.0)]).astype(np.float32)
    z[0, :3] = [-88.0, 0.0, 88.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        ours, theirs = tm.logistic(z), expit(z)
        rows, scipy_rows = tm.softmax_rows(z), softmax(z, axis=1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rows, scipy_rows, rtol=1e-5, atol=1e-7)
    assert ours.dtype == np.float32 and rows.dtype == np.float32
    assert ours[-2].tolist() == [1.0] * 9 and ours[-1].tolist() == [0.0] * 9


def test_save_and_load_give_identical_predictions(small_model, subset, tmp_path):
    small_model.save(tmp_path / "m")
    loaded = ThemeModel.load(tmp_path / "m")
    assert (loaded.labels, loaded.columns, loaded.version) == (
        small_model.labels,
        small_model.columns,
        small_model.version,
    )
    assert loaded.meta == json.loads(json.dumps(small_model.meta))
    sample = subset[:200]
    assert _predict_all(loaded, sample) == _predict_all(small_model, sample)


def test_to_parts_and_from_parts_give_identical_predictions(small_model, subset):
    manifest, arrays = small_model.to_parts()
    # What a database column would hold: JSON text and bytes.
    again = ThemeModel.from_parts(json.loads(json.dumps(manifest)), bytes(arrays))
    sample = subset[:200]
    assert _predict_all(again, sample) == _predict_all(small_model, sample)
    assert again.to_parts() == (manifest, arrays)


def test_arrays_are_plain_numbers_only(small_model):
    manifest, arrays = small_model.to_parts()
    assert manifest["format"] == FORMAT and manifest["format_version"] == FORMAT_VERSION
    with np.load(io.BytesIO(arrays), allow_pickle=False) as npz:
        for name in npz.files:
            assert not npz[name].dtype.hasobject, name
            assert npz[name].dtype.kind in "iuf", name


def _with_arrays(manifest: dict, arrays: dict[str, np.ndarray], allow_pickle=False) -> tuple:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=allow_pickle, **arrays)
    data = buf.getvalue()
    return {**manifest, "arrays_sha256": hashlib.sha256(data).hexdigest()}, data


def _arrays_of(model: ThemeModel) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(model.to_parts()[1]), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def test_an_object_array_is_refused_even_with_a_matching_sha256(small_model):
    manifest, _ = small_model.to_parts()
    arrays = _arrays_of(small_model)
    arrays["bias"] = np.array([{"x": 1}] * len(arrays["bias"]), dtype=object)
    bad_manifest, data = _with_arrays(manifest, arrays, allow_pickle=True)
    assert b"\x80" in zipfile.ZipFile(io.BytesIO(data)).read("bias.npy")  # a pickle inside
    with pytest.raises(ModelFormatError, match="plain arrays"):
        ThemeModel.from_parts(bad_manifest, data)


def test_arrays_of_the_wrong_dtype_or_shape_are_refused(small_model):
    manifest, _ = small_model.to_parts()
    arrays = _arrays_of(small_model)
    wrong_dtype = {**arrays, "weights": arrays["weights"].astype(np.float32)}
    with pytest.raises(ModelFormatError, match="'weights' is float32"):
        ThemeModel.from_parts(*_with_arrays(manifest, wrong_dtype))
    wrong_shape = {**arrays, "scales": arrays["scales"][:-1]}
    with pytest.raises(ModelFormatError, match="'scales'"):
        ThemeModel.from_parts(*_with_arrays(manifest, wrong_shape))
    extra = {**arrays, "more": np.zeros(3)}
    with pytest.raises(ModelFormatError, match="holds"):
        ThemeModel.from_parts(*_with_arrays(manifest, extra))


def test_a_tampered_model_is_refused(small_model, tmp_path):
    small_model.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    manifest["arrays_sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelFormatError, match="sha256"):
        ThemeModel.load(tmp_path)

    manifest, arrays = small_model.to_parts()
    flipped = bytearray(arrays)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(ModelFormatError, match="sha256"):
        ThemeModel.from_parts(manifest, bytes(flipped))


def test_an_unknown_format_or_a_newer_format_version_is_refused(small_model):
    manifest, arrays = small_model.to_parts()
    with pytest.raises(ModelFormatError, match="not an engage-themes model"):
        ThemeModel.from_parts({**manifest, "format": "sklearn-pickle"}, arrays)
    with pytest.raises(ModelFormatError, match="newer"):
        ThemeModel.from_parts({**manifest, "format_version": FORMAT_VERSION + 1}, arrays)
    with pytest.raises(ModelFormatError, match="format_version"):
        ThemeModel.from_parts({**manifest, "format_version": "1"}, arrays)
    with pytest.raises(ModelFormatError):
        ThemeModel.from_parts({**manifest, "thresholds": manifest["thresholds"][:-1]}, arrays)


# Byte strings found in any pickle of numpy or Python objects, never in plain .npy data.
PICKLE_MARKERS = (
    b"_reconstruct",
    b"numpy.core",
    b"numpy._core",
    b"__builtin__",
    b"builtins",
    b"copyreg",
    b"copy_reg",
    b"cnumpy",
)


def test_the_shipped_model_files_hold_no_pickle():
    directory = tm.DEFAULT_MODEL_DIR
    assert sorted(p.name for p in directory.iterdir()) == ["arrays.npz", "manifest.json"]
    manifest = (directory / "manifest.json").read_bytes()
    blobs = {"manifest.json": manifest}
    with zipfile.ZipFile(directory / "arrays.npz") as zf:
        for info in zf.infolist():
            blobs[info.filename] = zf.read(info)
            # Each member is an .npy of a numeric dtype whose data is exactly its shape:
            # nothing hides after the array.
            member = io.BytesIO(blobs[info.filename])
            version = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _fortran, dtype = read_header(member)
            assert dtype.kind in "iuf", info.filename
            rest = len(blobs[info.filename]) - member.tell()
            assert rest == int(np.prod(shape)) * dtype.itemsize, info.filename
    for name, blob in blobs.items():
        assert not blob.startswith((b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")), name
        for marker in PICKLE_MARKERS:
            assert marker not in blob, (name, marker)
    json.loads(manifest)


def test_the_model_module_imports_only_numpy_scipy_and_its_own_package():
    allowed_prefixes = ("numpy", "scipy", "engage.feedback.text")
    for name in ("model.py", "features.py", "fitting.py"):
        tree = ast.parse((TEXT_DIR / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                ok = module.startswith(allowed_prefixes) or top in _STDLIB
                assert ok, f"{name} imports {module}"
                assert not module.startswith(
                    ("engage.feedback.text.safety", "engage.feedback.text.pii")
                )


def test_reading_a_comment_imports_no_scipy_nor_flask():
    """``engage feedback classify`` starts fast because predicting needs numpy alone."""
    import subprocess
    import sys

    code = ("import sys; from engage.feedback.text.model import default_model; "
            "from engage.feedback.text.reader import read_comments; "
            "from engage.feedback.text.safety import default_rules; "
            "a = read_comments([('She was left soiled for hours', None, 'en')], "
            "default_model(), default_rules())[0]; "
            "print(a.safety.level, bool(a.prediction.scores), "
            "sorted(m for m in ('scipy', 'flask', 'sqlalchemy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["review", "True", "[]"]


def test_sparse_rows_count_and_multiply_as_scipy_does():
    from engage.feedback.text.features import Rows

    rng = np.random.default_rng(3)
    n_rows, n_cols = 40, 30
    lengths = rng.integers(0, 12, n_rows)
    lengths[[0, 5, 6, -1]] = 0  # empty rows, at the ends and in a run
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    columns = rng.integers(0, n_cols, int(indptr[-1])).astype(np.int64)
    ours = Rows.counted(columns, indptr, n_cols)
    theirs = sp.csr_matrix((np.ones(len(columns), dtype=np.float32), columns, indptr),
                           shape=(n_rows, n_cols))
    theirs.sum_duplicates()
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_array_equal(ours.data, theirs.data)
    dense = rng.normal(size=(n_cols, 7)).astype(np.float32)
    product = ours @ dense
    assert product.dtype == np.float32 and not product[[0, 5, 6, -1]].any()
    np.testing.assert_allclose(product, theirs @ dense, rtol=1e-5, atol=1e-6)


_STDLIB = {
    "__future__", "argparse", "array", "csv", "datetime", "functools", "gzip", "hashlib", "io",
    "json", "math", "os", "re", "sys", "time", "typing", "unicodedata", "zipfile", "collections",
    "dataclasses", "pathlib",
}  # fmt: skip


# --- predictions CSV --------------------------------------------------------------------------


def test_predictions_csv_has_one_row_per_input_row_and_the_model_columns(tmp_path):
    model = default_model()
    rows = [
        {"Comment ID": "a", "FFT answer": "The nurses were kind", "FFT question": "What was good?"},
        {"Comment ID": "b", "FFT answer": "Nothing", "FFT question": "What was good?"},
        {"Comment ID": "c", "FFT answer": "", "FFT question": ""},
        {
            "Comment ID": "d",
            "FFT answer": "Waited 4 hours,\nno one told us why",
            "FFT question": "",
        },
    ]
    source = tmp_path / "in.csv"
    with open(source, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, ["Comment ID", "FFT answer", "FFT question", "Other"])
        writer.writeheader()
        writer.writerows(rows)
    target = tmp_path / "out.csv"
    assert write_predictions_csv(model, source, target) == 4
    with open(target, encoding="utf-8", newline="") as fh:
        out = list(csv.reader(fh))
    assert out[0] == ["Comment ID", *model.columns, "Comment sentiment"]
    assert [r[0] for r in out[1:]] == ["a", "b", "c", "d"]
    for row in out[1:]:
        assert len(row) == len(model.columns) + 2
        assert set(row[1:-1]) <= {"0", "1"}
        assert row[-1] in {"1", "2", "3", "4", "5"}
    staff = model.columns.index("Staff manner & personal attributes")
    assert out[1][1 + staff] == "1"


def test_predictions_csv_needs_no_question_column_and_reads_the_training_format(tmp_path):
    model = default_model()
    source = tmp_path / "in.csv.gz"
    with gzip.open(source, "wt", encoding="utf-8", newline="") as fh:
        fh.write('Comment ID,FFT answer\nx,"I waited four hours to be seen"\n')
    assert write_predictions_csv(model, source, tmp_path / "out.csv") == 1
    with pytest.raises(ValueError, match="FFT answer"):
        (tmp_path / "bad.csv").write_text("Comment ID,text\n1,hi\n", encoding="utf-8")
        write_predictions_csv(model, tmp_path / "bad.csv", tmp_path / "out2.csv")


# --- the shipped model ------------------------------------------------------------------------


def test_the_question_changes_what_nothing_means():
    model = default_model()
    good, better = model.predict(
        ["Nothing", "Nothing"], ["What was good?", "What could we do better?"]
    )
    assert good.sentiment >= 4
    assert better.sentiment <= 2
    assert "Negative experience & dissatisfaction" in dict(good.themes)
    assert "Negative experience & dissatisfaction" not in dict(better.themes)


def test_the_shipped_model_suggests_sensible_themes():
    model = default_model()
    kind, wait = model.predict(
        ["The nurses were kind and caring", "I waited four hours to be seen"]
    )
    assert kind.themes[0][0] == "Staff manner & personal attributes"
    assert kind.sentiment <= 2
    assert wait.themes[0][0] == "Timeliness of care"
    assert wait.sentiment >= 4
    for p in (kind, wait):
        assert set(p.scores) == set(model.labels)
        assert all(0.0 <= s <= 1.0 for s in p.scores.values())
        assert [s for _, s in p.themes] == sorted((s for _, s in p.themes), reverse=True)
        assert p.sentiment_label == SENTIMENT_LABELS[p.sentiment]
        assert 0.2 <= p.sentiment_confidence <= 1.0


def test_the_shipped_model_stays_small_and_is_documented():
    directory = tm.DEFAULT_MODEL_DIR
    assert sum(p.stat().st_size for p in directory.iterdir()) < SIZE_BUDGET
    model = default_model()
    assert model is default_model()  # loaded once
    assert model.meta["n_examples"] == 4993
    assert model.meta["evaluation"]["macro_f1"] > 0.4
    assert model.meta["data_sources"][0]["origin"].startswith("The-Strategy-Unit/pxtextmining")
    assert set(model.labels) <= set(model.columns)
    assert "Parking" in model.columns and "Parking" not in model.labels  # one example only
    assert model.version.endswith(model.to_parts()[0]["arrays_sha256"][:8])


# --- training ---------------------------------------------------------------------------------


def test_training_is_deterministic(subset, small_model, base):
    again = train(subset, columns=base[1])
    assert again.to_parts()[1] == small_model.to_parts()[1]
    assert again.version.split("-")[-1] == small_model.version.split("-")[-1]


def test_the_solver_is_recorded_and_the_small_model_uses_the_exact_one(small_model, subset):
    assert len(subset) <= fitting.EXACT_MAX_EXAMPLES
    assert small_model.meta["solver"] == {"method": "cholesky"}


@pytest.fixture(scope="module")
def iterative(subset, base) -> tuple[ThemeModel, np.ndarray]:
    """The subset trained by conjugate gradients, as above EXACT_MAX_EXAMPLES, with a
    weaker preconditioner than the default so that it iterates for real."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "EXACT_MAX_EXAMPLES", 0)
        mp.setattr(fitting, "NYSTROEM_RANK", 20)
        return tm._train(subset, columns=base[1])


def test_the_iterative_solver_gives_the_exact_model_up_to_its_tolerance(iterative, subset, base):
    """docs/themes-model.md, "Training at scale": the same regressions to 1e-4 (relative
    residual), so weights within ~1e-3 and confidences within ~0.01 of the exact fit."""
    model, coef = iterative
    solver = model.meta["solver"]
    assert solver["method"] == "conjugate gradients" and solver["converged"]
    assert solver["max_residual"] <= fitting.CG_TOLERANCE
    assert len(solver["iterations"]) == 4 and min(solver["iterations"]) > 5
    exact, exact_coef = tm._train(subset, columns=base[1])
    assert exact.meta["solver"]["method"] == "cholesky"
    assert model.labels == exact.labels and model.columns == exact.columns
    assert np.linalg.norm(coef - exact_coef) <= 1e-3 * np.linalg.norm(exact_coef)
    assert np.abs(model.thresholds - exact.thresholds).max() <= 0.02
    probe = base[0][1::3][:600]  # comments the subset does not hold
    texts, questions = [e.text for e in probe], [e.question for e in probe]
    t_it, s_it = model.decision_scores(texts, questions)
    t_ex, s_ex = exact.decision_scores(texts, questions)
    np.testing.assert_allclose(t_it, t_ex, atol=0.02)
    np.testing.assert_allclose(s_it, s_ex, atol=0.02)
    changed = (t_it >= model.thresholds) != (t_ex >= exact.thresholds)
    assert changed.sum() <= 0.001 * changed.size
    assert (s_it.argmax(axis=1) != s_ex.argmax(axis=1)).sum() <= 0.01 * len(probe)


def test_the_iterative_solver_is_deterministic(iterative, subset, base):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "EXACT_MAX_EXAMPLES", 0)
        mp.setattr(fitting, "NYSTROEM_RANK", 20)
        again = train(subset, columns=base[1])
    assert again.to_parts()[1] == iterative[0].to_parts()[1]


@pytest.mark.parametrize("rank", [None, 5, 60])
def test_solve_ridge_cg_solves_solve_ridges_system(rank):
    rng = np.random.default_rng(1)
    n, d = 60, 40
    x = sp.random(n, d, density=0.15, random_state=2, format="csr", dtype=np.float32)
    weights = rng.choice([0.5, 1.0, 2.0], size=n)
    targets = np.zeros((n, 4))
    targets[:, 0] = rng.random(n) < 0.3
    targets[:, 1] = rng.random(n)
    targets[:, 3] = 1.0  # column 2 stays all zero: its solution is 0 at once
    rows = np.flatnonzero(rng.random(n) < 0.7)
    # The exact dual solution, in float64.
    xd = x.toarray().astype(np.float64)[rows]
    r = np.sqrt(weights[rows])
    m = (xd @ xd.T + 1.0) * np.outer(r, r) + 3.0 * np.eye(len(rows))
    exact = sla.solve(m, targets[rows] * r[:, None], assume_a="pos") * r[:, None]
    nystroem = None if rank is None else fitting.Nystroem.build(x, weights, rank)
    sol, report = fitting.solve_ridge_cg(x, targets, weights, rows, 3.0, nystroem, tolerance=1e-8)
    assert report.converged and report.residuals.max() <= 1e-8
    assert report.residuals[2] == 0.0 and not sol.dual[:, 2].any()
    np.testing.assert_array_equal(sol.rows, rows)
    np.testing.assert_allclose(sol.dual, exact, atol=1e-6)
    coef, bias = fitting.primal(x, sol)
    np.testing.assert_allclose(bias, exact.sum(axis=0), atol=1e-6)
    held = np.setdiff1d(np.arange(n), rows)
    scores = fitting.primal_scores(x, coef, bias, held)
    np.testing.assert_allclose(scores, (x.toarray()[held] @ xd.T + 1.0) @ exact, atol=1e-5)


def test_solve_ridge_cg_reports_a_fit_it_stopped_early():
    rng = np.random.default_rng(3)
    x = sp.random(200, 300, density=0.05, random_state=4, format="csr", dtype=np.float32)
    targets = rng.random((200, 2))
    weights = np.ones(200)
    _sol, report = fitting.solve_ridge_cg(
        x, targets, weights, np.arange(200), 0.1, tolerance=1e-10, max_iterations=2
    )
    assert report.iterations == 2 and not report.converged
    assert (report.residuals > 1e-10).all()


def test_an_example_of_weight_two_counts_as_two_copies(subset, base):
    part = subset[:900]
    doubled = [ex for ex in part[:300] for _ in range(2)] + part[300:]
    weighted = [
        Example(ex.id, ex.text, ex.question, ex.themes, ex.sentiment, ex.group, weight=2.0)
        for ex in part[:300]
    ] + part[300:]
    a = train(doubled, columns=base[1])
    b = train(weighted, columns=base[1])
    assert a.labels == b.labels
    probe = part[:100]
    sa, ta = a.decision_scores([e.text for e in probe], [e.question for e in probe])
    sb, tb = b.decision_scores([e.text for e in probe], [e.question for e in probe])
    np.testing.assert_allclose(sa, sb, atol=2e-3)
    np.testing.assert_allclose(ta, tb, atol=2e-3)


def test_examples_of_weight_zero_are_left_out(subset, base):
    part = subset[:900]
    muted = [
        Example(ex.id, ex.text, ex.question, ex.themes, ex.sentiment, ex.group, weight=0.0)
        for ex in part[:200]
    ]
    a = train(part[200:], columns=base[1])
    b = train(muted + part[200:], columns=base[1])
    assert a.to_parts()[1] == b.to_parts()[1]


def test_a_theme_outside_the_csv_columns_becomes_a_label(subset, base):
    columns = base[1]
    kind_words = ("kind", "lovely", "friendly", "caring")
    examples = [
        Example(
            ex.id,
            ex.text,
            ex.question,
            ex.themes
            | (
                {"Warmth (added by an admin)"}
                if any(w in ex.text.lower() for w in kind_words)
                else set()
            ),
            ex.sentiment,
            ex.group,
        )
        for ex in subset
    ]
    assert sum("Warmth (added by an admin)" in ex.themes for ex in examples) >= 20
    model = train(examples, columns=columns)
    assert model.columns == [*columns, "Warmth (added by an admin)"]
    assert "Warmth (added by an admin)" in model.labels
    assert "Parking" not in model.labels  # too few examples: a column, not a label
    (p,) = model.predict(["Such friendly and caring staff"], ["What was good?"])
    assert "Warmth (added by an admin)" in dict(p.themes)


def test_evaluate_reports_themes_and_sentiment(small_model, base):
    examples, _columns = base
    _rest, held = grouped_split(examples)
    result = evaluate(small_model, held[:300])
    assert result["n"] == 300
    assert 0.0 < result["macro_f1"] <= result["micro_f1"] <= 1.0
    assert set(result["sentiment"]) == {"n", "accuracy", "macro_f1", "within_one"}
    assert result["sentiment"]["n"] == sum(ex.sentiment is not None for ex in held[:300])
    for values in result["per_label"].values():
        assert set(values) == {"f1", "precision", "recall", "support"}


def test_a_batch_predicts_what_single_comments_predict():
    model = default_model()
    texts = ["Staff were rude", "Lovely food", "Nothing", "Could not get through on the phone"]
    questions = ["FFT Why?", None, "What was good?", "How could we improve?"]
    batch = model.predict(texts, questions)
    singles = [model.predict([t], [q])[0] for t, q in zip(texts, questions, strict=True)]
    for a, b in zip(batch, singles, strict=True):
        assert [t for t, _ in a.themes] == [t for t, _ in b.themes]
        assert a.sentiment == b.sentiment
        np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), rtol=1e-5)
