import numpy as np
import pytest

from fcnn.decision import DecisionRule, chosen_row, fit_prior_correction


def _skewed_problem(n=4000, seed=0):
    """Calibrated probabilities of a 3-class problem with priors 0.8 / 0.15 / 0.05."""
    rng = np.random.default_rng(seed)
    priors = np.array([0.8, 0.15, 0.05])
    labels = rng.choice(3, n, p=priors)
    # likelihoods: a noisy one-hot signal; posteriors by Bayes, so they are calibrated
    means = np.eye(3) * 1.2
    x = means[labels] + rng.standard_normal((n, 3))
    loglik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=2)
    post = np.exp(loglik) * priors
    return post / post.sum(axis=1, keepdims=True), labels, priors


def test_no_weights_is_the_plain_argmax():
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    np.testing.assert_array_equal(DecisionRule().decide(probs), [1, 0])
    np.testing.assert_array_equal(DecisionRule((1.0, 1.0, 3.0)).decide(probs), [2, 2])


def test_dividing_out_the_prior_trades_accuracy_for_balanced_accuracy():
    probs, labels, priors = _skewed_problem()
    rule, table = fit_prior_correction(probs, labels, priors, min_accuracy=0.0)
    by_alpha = {row["alpha"]: row for row in table}
    assert by_alpha[1.0]["balanced_accuracy"] > by_alpha[0.0]["balanced_accuracy"] + 0.05
    assert by_alpha[1.0]["accuracy"] < by_alpha[0.0]["accuracy"]
    assert rule.alpha > 0.5  # no accuracy floor: balanced accuracy wins
    best = max(row["balanced_accuracy"] for row in table)
    assert by_alpha[rule.alpha]["balanced_accuracy"] == best


def test_the_accuracy_floor_is_respected():
    probs, labels, priors = _skewed_problem()
    _, table = fit_prior_correction(probs, labels, priors, min_accuracy=0.0)
    floor = np.median([row["accuracy"] for row in table])
    rule, _ = fit_prior_correction(probs, labels, priors, min_accuracy=floor)
    assert np.mean(rule.decide(probs) == labels) >= floor
    unreachable, _ = fit_prior_correction(probs, labels, priors, min_accuracy=1.0)
    assert unreachable == DecisionRule()


def test_round_trip_and_errors():
    rule = DecisionRule((1.0, 2.0, 4.0), 0.5)
    assert DecisionRule.from_dict(rule.to_dict()) == rule
    assert DecisionRule.from_dict(None) == DecisionRule()
    assert "0.50" in rule.describe() and "argmax" in DecisionRule().describe()
    with pytest.raises(ValueError, match="3 class weights"):
        rule.decide(np.ones((2, 4)))
    with pytest.raises(ValueError, match="positive class frequencies"):
        fit_prior_correction(np.ones((2, 3)) / 3, np.array([0, 1]), np.array([1.0, 0.0, 0.0]), 0.5)


def test_a_recall_floor_moves_the_choice_towards_that_class():
    probs, labels, priors = _skewed_problem()
    free, table = fit_prior_correction(probs, labels, priors, min_accuracy=0.0)
    rare = 2
    recall_of = {
        row["alpha"]: np.mean(
            DecisionRule(tuple((priors ** -row["alpha"]).tolist())).decide(probs)[labels == rare]
            == rare
        )
        for row in table
    }
    floor = max(recall_of.values()) - 1e-9  # only the exponents with the best recall of class 2
    rule, table = fit_prior_correction(
        probs, labels, priors, min_accuracy=0.0, min_recall={rare: floor}, boosts=[1.0]
    )
    assert recall_of[rule.alpha] >= floor
    assert all(row["meets"] == (recall_of[row["alpha"]] >= floor) for row in table)
    impossible, table = fit_prior_correction(probs, labels, priors, 0.0, min_recall={rare: 1.01})
    assert {row["boost"] for row in table} == set(np.geomspace(1.0, 8.0, 30))
    assert impossible == free  # no exponent meets it: dropped, the accuracy floor alone decides
    assert not any(row["meets"] for row in table) and all(row["meets_accuracy"] for row in table)
    floor = np.median([row["accuracy"] for row in table])
    neither, _ = fit_prior_correction(probs, labels, priors, 1.0, min_recall={rare: 1.01})
    assert neither == DecisionRule()  # not even the accuracy floor: the plain argmax
    dropped, _ = fit_prior_correction(probs, labels, priors, floor, min_recall={rare: 1.01})
    assert dropped == fit_prior_correction(probs, labels, priors, floor)[0]
    assert dropped != DecisionRule()  # not the plain argmax, which answers class 2 least
    with pytest.raises(ValueError, match="min_recall names classes"):
        fit_prior_correction(probs, labels, priors, 0.0, min_recall={7: 0.5})


def _recall(rule, probs, labels, c):
    return np.mean(rule.decide(probs)[labels == c] == c)


def test_a_boost_reaches_a_recall_floor_the_exponent_alone_cannot():
    probs, labels, priors = _skewed_problem()
    rare = 2
    best_by_alpha = max(
        _recall(DecisionRule(tuple((priors**-a).tolist())), probs, labels, rare)
        for a in np.linspace(0, 1, 21)
    )
    floor = min(best_by_alpha + 0.05, 0.99)
    rule, table = fit_prior_correction(probs, labels, priors, 0.0, min_recall={rare: floor})
    assert rule.boost > 1.0 and rule.boosted == (rare,)
    assert _recall(rule, probs, labels, rare) >= floor
    # the weights are the prior correction with the boost on the floor's class only
    expected = priors**-rule.alpha * np.where(np.arange(3) == rare, rule.boost, 1.0)
    np.testing.assert_allclose(rule.weights, expected)
    # the best balanced accuracy among the pairs that meet the floor
    meeting = [row for row in table if row["meets"]]
    assert meeting and all(
        row["meets"] == (_recall_of_row(row, probs, labels, priors) >= floor) for row in table
    )
    chosen = max(row["balanced_accuracy"] for row in meeting)
    assert chosen == chosen_row(rule, table)["balanced_accuracy"]
    assert "weighed" in rule.describe(("a", "b", "c")) and "c weighed" in rule.describe(
        ("a", "b", "c")
    )
    assert DecisionRule.from_dict(rule.to_dict()) == rule


def _recall_of_row(row, probs, labels, priors, rare=2):
    extra = np.where(np.arange(3) == rare, row["boost"], 1.0)
    rule = DecisionRule(tuple((priors ** -row["alpha"] * extra).tolist()))
    return _recall(rule, probs, labels, rare)


def test_a_boost_is_only_used_for_a_floor_and_must_be_a_factor_of_at_least_one():
    probs, labels, priors = _skewed_problem()
    rule, table = fit_prior_correction(probs, labels, priors, 0.0)
    assert rule.boost == 1.0 and {row["boost"] for row in table} == {1.0}
    with pytest.raises(ValueError, match="boosts must be factors"):
        fit_prior_correction(probs, labels, priors, 0.0, min_recall={2: 0.5}, boosts=[0.5])
    # a rule stored before boosts existed reads as no boost
    old = DecisionRule.from_dict({"weights": [1.0, 2.0, 3.0], "alpha": 0.5})
    assert old.boost == 1.0 and old.boosted == () and "weighed" not in old.describe()


def test_answer_rules_flag_uncertain_and_high_risk_answers():
    from fcnn.decision import AnswerRules

    rules = AnswerRules(uncertain_below=0.4, high_risk_classes=("bcc", "mel"), high_risk_at=0.3)
    names = ("bcc", "mel", "nv")
    assert rules.is_uncertain(0.39) and not rules.is_uncertain(0.4)
    assert rules.high_risk_probability(np.array([0.1, 0.15, 0.75]), names) == pytest.approx(0.25)
    assert not rules.is_high_risk(np.array([0.1, 0.15, 0.75]), names)
    assert rules.is_high_risk(np.array([0.1, 0.2, 0.7]), names)
    assert not AnswerRules().is_high_risk(np.array([1.0, 0.0, 0.0]), names)  # no such flag
    assert AnswerRules.from_dict(rules.to_dict()) == rules
    with pytest.raises(ValueError, match="high_risk_at must be a probability"):
        AnswerRules(high_risk_at=1.5)


def test_screening_threshold_is_the_largest_that_reaches_the_sensitivity():
    from fcnn.decision import fit_screening_threshold

    rng = np.random.default_rng(3)
    risk = rng.random(500)
    positive = rng.random(500) < 0.3
    for sensitivity in (0.5, 0.8, 0.9, 0.95, 1.0):
        t = fit_screening_threshold(risk, positive, sensitivity)
        assert np.mean(risk[positive] >= t) >= sensitivity
        # any larger threshold flagging fewer cases (the next positive score up) misses it
        last = risk[positive][risk[positive] >= t].min()
        above = risk[positive][risk[positive] > last]
        if above.size:
            assert np.mean(risk[positive] >= above.min()) < sensitivity
        # the margin: no case lies between the threshold and the last positive it flags
        assert not np.any((risk >= t) & (risk < last))
        assert t < last or not np.any(risk < last)


def test_screening_threshold_by_hand_and_its_errors():
    from fcnn.decision import fit_screening_threshold

    risk = np.array([0.9, 0.1, 0.7, 0.4, 0.2, 0.05])
    positive = np.array([True, False, True, True, True, False])
    # positives scored 0.9, 0.7, 0.4, 0.2: 3 of 4 (0.75) down to 0.4, all 4 down to 0.2;
    # each threshold halfway to the next lower score of any case (0.2; 0.1)
    assert fit_screening_threshold(risk, positive, 0.75) == pytest.approx(0.3)
    assert fit_screening_threshold(risk, positive, 0.76) == pytest.approx(0.15)
    # float32 scores of the same cases flag the same cases
    t = fit_screening_threshold(risk, positive, 0.76)
    np.testing.assert_array_equal(risk.astype(np.float32) >= t, risk >= t)
    with pytest.raises(ValueError, match="no positive case"):
        fit_screening_threshold(risk, np.zeros(6, bool), 0.9)
    with pytest.raises(ValueError, match=r"sensitivity must be in \(0, 1\]"):
        fit_screening_threshold(risk, positive, 0.0)


def test_uncertain_threshold_is_the_largest_within_the_share():
    from fcnn.decision import fit_uncertain_threshold

    rng = np.random.default_rng(5)
    top = rng.random(400)
    already = rng.random(400) < 0.04
    for share in (0.03, 0.05, 0.1, 0.2, 0.5):
        t = fit_uncertain_threshold(top, already, share)
        if already.mean() > share:  # the cases out of distribution alone are too many
            assert t == 0.0
            continue
        abstains = already | (top < t)
        assert abstains.mean() <= share
        # the next higher top probability would abstain on one case too many
        higher = top[top >= t]
        if higher.size:
            assert (already | (top <= higher.min())).mean() > share


def test_uncertain_threshold_by_hand_ties_float32_and_errors():
    from fcnn.decision import fit_uncertain_threshold

    top = np.array([0.9, 0.3, 0.5, 0.3, 0.8, 0.6, 0.95, 0.7, 0.4, 0.99])
    none = np.zeros(10, bool)
    # 2 of 10 may abstain: the tied 0.3s; halfway to the next level (0.4)
    assert fit_uncertain_threshold(top, none, 0.2) == pytest.approx(0.35)
    # 1 of 10: abstaining on one 0.3 would abstain on both, so not by confidence at all
    assert fit_uncertain_threshold(top, none, 0.1) == 0.0
    # a case out of distribution uses the budget up, unless it is itself among the least sure
    far = np.array([False, True, False, False, False, False, False, False, False, False])
    assert fit_uncertain_threshold(top, far, 0.2) == pytest.approx(0.35)
    far_sure = np.roll(far, 7)  # the 0.4 case
    assert fit_uncertain_threshold(top, far_sure, 0.2) == 0.0
    assert fit_uncertain_threshold(top, far_sure, 0.3) == pytest.approx(0.45)
    assert fit_uncertain_threshold(top, none, 1.0) == 1.0
    t = fit_uncertain_threshold(top, none, 0.3)
    np.testing.assert_array_equal(top.astype(np.float32) < t, top < t)
    with pytest.raises(ValueError, match=r"max_share must be in \[0, 1\]"):
        fit_uncertain_threshold(top, none, 1.5)
    with pytest.raises(ValueError, match="one top probability and one flag per case"):
        fit_uncertain_threshold(top, none[:3], 0.1)
