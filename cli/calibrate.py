"""``fcnn calibrate [CONFIG] --weights W --method temperature|bias|vector``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import attrs
import typer

from cli.common import console, fail, friendly_errors
from fcnn import calibration, checkpoint, decision
from fcnn.training.data import prepare_data
from fcnn.training.fits import FitRequest, finalize_model
from fcnn.training.run_config import model_config


@friendly_errors
def calibrate_command(
    weights: Annotated[Path, typer.Option(help="Checkpoint .npz to (re)calibrate in place")],
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Optional: the validation split comes from the config stored in the "
            "checkpoint; a CONFIG given must agree with it on dataset, model and data",
            show_default=False,
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="none, temperature, bias or vector")] = "temperature",
    ood_quantile: Annotated[
        float | None, typer.Option(help="Also refit the out-of-distribution detector")
    ] = None,
    screening_sensitivity: Annotated[
        float | None,
        typer.Option(
            help="Also fit the high-risk flag's threshold (answer_rules.high_risk_at) so that "
            "this share of validation lesions of the high-risk classes is flagged high"
        ),
    ] = None,
    uncertain_share: Annotated[
        float | None,
        typer.Option(
            help="Also fit the uncertain threshold (answer_rules.uncertain_below): the largest "
            "at which at most this share of validation lesions is answered uncertain, those "
            "out of distribution included"
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data root (default: $FCNN_DATA, else the one the model's run read)"),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config field")] = None,
) -> None:
    """Fit calibration (and optionally the OOD detector, the screening operating point and the
    uncertain threshold) on the validation split, in place."""
    if method not in calibration.METHODS:
        raise fail(f"--method must be one of {', '.join(calibration.METHODS)}; got {method!r}")
    stored = checkpoint.load(weights)
    cfg = model_config(stored.info.config, config, set_ or [], str(weights))
    # the model's own rules (their thresholds may have been fitted since its config was
    # written) are the ones to refit, unless this command is given other ones
    stored_rules = stored.info.answer_rules and decision.AnswerRules.from_dict(
        stored.info.answer_rules
    )
    given = config is not None or any(s.startswith("answer_rules") for s in set_ or [])
    cfg = attrs.evolve(
        cfg,
        calibration=method,
        ood_quantile=ood_quantile,
        screening_sensitivity=screening_sensitivity,
        uncertain_share=uncertain_share,
        answer_rules=(cfg.answer_rules if given else stored_rules) or cfg.answer_rules,
    )
    net, params, state = checkpoint.build(stored)
    data = prepare_data(cfg, data_dir, stored_root=stored.info.data_root)
    fitted = finalize_model(net, params, state, data, FitRequest.of(cfg), weights)
    for line in fitted.lines:
        console.print(line, highlight=False, soft_wrap=True)
