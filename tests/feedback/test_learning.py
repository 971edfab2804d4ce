"""Learning from staff: confirmations become training data, a candidate is scored on held-out
confirmed items, and only an admin switches it on."""

from __future__ import annotations

from sqlalchemy import select

from engage.feedback import learning
from engage.feedback.analysis import active_model, analyse
from engage.feedback.models import ThemeModelRecord
from engage.feedback.services import confirm_themes
from engage.feedback.text.model import default_model
from engage.feedback.themes import create_theme, merge_theme

CAR_PARK = [
    "The pay machine in the multi-storey ate my coins again",
    "Pay machine broken so I got a fine from the multi-storey",
    "The multi-storey pay machine only takes coins",
    "Ticket from the pay machine would not print at the multi-storey",
]


def test_confirmed_themes_become_examples_with_merges_followed(make_item, make_user, theme, db):
    admin = make_user("admin")
    item = make_item("The food was cold and late.")
    confirm_themes(item, admin, [theme("Food & drink provision & facilities").id,
                                 theme("Timeliness of care").id], sentiment=4)
    merge_theme(theme("Timeliness of care"), theme("Appointment arrangements"), admin)
    db.session.commit()
    [example] = learning.confirmed_examples()
    assert example.themes == frozenset({"Food & drink provision & facilities",
                                        "Appointment arrangements"})
    assert example.sentiment == 4 and example.weight == learning.CONFIRMED_WEIGHT


def test_the_held_out_items_are_the_same_every_time(make_item, make_user, db):
    admin = make_user("admin")
    for n in range(30):
        confirm_themes(make_item(f"Comment number {n} about the staff."), admin)
    db.session.commit()
    first = learning.split_confirmed(learning.confirmed_examples())
    second = learning.split_confirmed(learning.confirmed_examples())
    assert [e.id for e in first[1]] == [e.id for e in second[1]]
    assert 0 < len(first[1]) < 30
    assert not {e.id for e in first[0]} & {e.id for e in first[1]}


def test_a_new_theme_is_learned_from_confirmations_and_used_once_switched_on(
    make_item, make_user, db,
):
    admin = make_user("admin")
    car_park = create_theme("Car park payment", "Service location, travel & transport", admin)
    for round_ in range(4):
        for text in CAR_PARK:
            item = make_item(f"{text} ({round_})")
            confirm_themes(item, admin, [car_park.id], sentiment=4)
    db.session.commit()
    candidate = learning.retrain(admin)
    db.session.commit()
    assert candidate.status == "candidate"
    assert "Car park payment" in candidate.manifest["labels"]
    assert candidate.evaluation["held_out"] > 0
    assert candidate.evaluation["candidate"]["n"] == candidate.evaluation["held_out"]
    assert candidate.training["confirmed_used"] + candidate.training["confirmed_held_out"] == 16
    # Not in force until an admin switches it on.
    assert active_model()[1] is None
    learning.activate(candidate, admin)
    db.session.commit()
    model, model_id = active_model()
    assert model_id == candidate.id and model.version == candidate.version
    result = analyse("The multi-storey pay machine took my coins", None, "en")
    assert "Car park payment" in [name for name, _c in result.prediction.themes]
    learning.activate(None, admin)  # back to the shipped model
    db.session.commit()
    assert active_model()[0].version == default_model().version
    assert db.session.get(ThemeModelRecord, candidate.id).status == "retired"


def test_the_job_waits_for_enough_new_confirmations(app, make_item, make_user, db):
    admin = make_user("admin")
    app.config["THEMES_RETRAIN_MIN_NEW"] = 3
    try:
        for n in range(2):
            confirm_themes(make_item(f"Kind staff {n}."), admin)
        db.session.commit()
        assert learning.retrain_if_due() is None
        confirm_themes(make_item("Kind staff again."), admin)
        db.session.commit()
        assert learning.retrain_if_due() is not None
        assert learning.retrain_if_due() is None  # nothing new since
    finally:
        app.config["THEMES_RETRAIN_MIN_NEW"] = 50
    assert len(db.session.scalars(select(ThemeModelRecord)).all()) == 1


def test_a_held_lease_stops_a_second_trainer(app, make_item, make_user, db):
    from engage.core.db import job_lease, utcnow

    admin = make_user("admin")
    app.config["THEMES_RETRAIN_MIN_NEW"] = 1
    try:
        confirm_themes(make_item("Kind staff."), admin)
        db.session.commit()
        assert job_lease(learning.LEASE, "other-host:1", 3600, utcnow())
        assert learning.retrain_if_due() is None
    finally:
        app.config["THEMES_RETRAIN_MIN_NEW"] = 50


def test_retraining_starts_from_the_shipped_base_data_unless_told_otherwise(app, db):
    old = app.config["THEMES_BASE_DATA"]
    app.config["THEMES_BASE_DATA"] = None
    try:
        assert len(learning.base_examples()) == 4993
    finally:
        app.config["THEMES_BASE_DATA"] = old
    assert len(learning.base_examples()) == 1200  # the tests' smaller sample


def test_an_admins_request_is_trained_by_the_next_run_even_without_new_confirmations(
    make_user, db,
):
    admin = make_user("admin")
    learning.request_training(admin)
    db.session.commit()
    assert learning.training_requested() is not None
    candidate = learning.retrain_if_due()
    assert candidate is not None and candidate.created_by_id == admin.id
    assert learning.training_requested() is None
    assert learning.retrain_if_due() is None
