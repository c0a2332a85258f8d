"""CLI of the policy side: ``teleop policy train | serve | info`` (registered into ``teleop.cli``)."""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading
from pathlib import Path
from typing import Any

from teleop.cli_types import finite_float, int_in, seconds
from teleop.errors import ConfigError, TeleopError
from teleop.policy import DEFAULT_POLICY_ENDPOINT

__all__ = ["add_parsers", "parse_options"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("policy", help="train, serve and query policies (docs/policies.md)")
    psub = p.add_subparsers(dest="policy_command", metavar="POLICY_COMMAND", required=True)

    t = psub.add_parser(
        "train", help="train the reference behaviour-cloning policy (kNN or MLP, NumPy) on recorded episodes",
        description="teleop policy train DATASET [DATASET...] --out MODEL.npz: features are the measured joints and "
        "the object positions, targets the next --chunk executed commands at --fps. Frames a human commanded weigh "
        "1, intervention frames --intervention-weight, frames the policy commanded --policy-weight. Serve the "
        "result with `teleop policy serve --policy bc --option model=MODEL.npz`.")
    t.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset folder, episode folder or DATASET:INDEX")
    t.add_argument("--out", required=True, help="model file to write (.npz)")
    t.add_argument("--kind", default="knn", choices=("knn", "mlp"), help="model (default %(default)s)")
    t.add_argument("--fps", type=finite_float(0, 1000, low_open=True, unit="Hz"), default=50,
                   help="sample rate of frames and chunk rows, at most 1000 (default %(default)s)")
    t.add_argument("--chunk", type=int_in(1, 1000), default=10, help="rows per predicted chunk, 1..1000 "
                   "(default %(default)s)")
    t.add_argument("--only-interventions", action="store_true", help="train on intervention frames only (HG-DAgger)")
    t.add_argument("--only-success", action="store_true", help="train only on episodes labelled success (live: "
                   "`teleop episodes success`; offline: `teleop episodes label DATASET:INDEX --success`)")
    t.add_argument("--include-discarded", action="store_true", help="also train on episodes marked discarded")
    t.add_argument("--intervention-weight", type=finite_float(0, 1000), default=5.0, help="weight of intervention "
                   "frames, 0..1000 (default %(default)s)")
    t.add_argument("--policy-weight", type=finite_float(0, 1000), default=0.0, help="weight of frames the policy "
                   "commanded, 0..1000 (default %(default)s)")
    t.add_argument("--k", type=int_in(1, 5), default=3, help="kNN neighbours, 1..5 (default %(default)s)")
    t.add_argument("--time-weight", type=finite_float(0, 1000), default=0.0, help="also condition on the time since "
                   "the rollout "
                   "started, this much (0 = off, default); helps a demonstration with pauses, where the state alone "
                   "does not say what comes next")
    t.add_argument("--epochs", type=int_in(1, 100_000), default=10, help="MLP epochs, 1..100000 (default %(default)s)")
    t.add_argument("--hidden", type=int_in(1, 65536), default=128, help="MLP hidden units per layer, 1..65536 "
                   "(default %(default)s)")
    t.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    t.add_argument("--json", action="store_true", help="print the report as JSON")
    t.set_defaults(func=cmd_policy_train)

    s = psub.add_parser(
        "serve", help="serve a policy on a REP socket (answers policy_obs with policy_action chunks)",
        description="teleop policy serve --policy NAME_OR_MODULE:ATTR [--option KEY=VALUE ...]: NAME is an entry "
        "point of group teleop.policies (built in: replay, bc), MODULE:ATTR a Policy class or factory; options are "
        "its keyword arguments (numbers and true/false are converted).")
    s.add_argument("--policy", required=True, help="entry-point name or module.path:attr")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="policy argument (repeatable)")
    s.add_argument("--endpoint", default=DEFAULT_POLICY_ENDPOINT, help="address to bind (default %(default)s)")
    s.add_argument("--keys", help="CURVE keys folder (required off loopback)")
    s.add_argument("--seconds", type=seconds, help="stop after this long")
    s.set_defaults(func=cmd_policy_serve)

    i = psub.add_parser("info", help="ask a running policy server what it serves")
    i.add_argument("--endpoint", default=DEFAULT_POLICY_ENDPOINT, help="the server (default %(default)s)")
    i.add_argument("--keys", help="CURVE keys folder")
    i.add_argument("--timeout", type=finite_float(0, 600, low_open=True, unit="s"), default=2.0,
                   help="seconds to wait, at most 600 (default %(default)s)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_policy_info)


def _value(key: str, text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            value = conv(text)
        except ValueError:
            continue
        if not math.isfinite(value):  # "nan", "inf", "1e999": never a policy argument
            raise ConfigError(f"--option {key}={text}: a number must be finite (not NaN or infinity)")
        return value
    return text


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["k=3", "model=m.npz", "fast=true"]`` -> ``{"k": 3, "model": "m.npz", "fast": True}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ConfigError(f"--option {item!r}: write KEY=VALUE with KEY a Python identifier")
        out[key] = _value(key, text)
    return out


def _keys(folder: str | None) -> Any:
    if not folder:
        return None
    from teleop.bus.security import CurveKeys

    return CurveKeys.load(folder)


def cmd_policy_train(args: argparse.Namespace) -> int:
    from teleop.policy.bc import train_bc

    report = train_bc(args.datasets, Path(args.out), kind=args.kind, fps=args.fps, chunk=args.chunk, seed=args.seed,
                      only_interventions=args.only_interventions, intervention_weight=args.intervention_weight,
                      policy_weight=args.policy_weight, k=args.k, epochs=args.epochs, hidden=args.hidden,
                      time_weight=args.time_weight, only_success=args.only_success,
                      include_discarded=args.include_discarded)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"trained {report['kind']} on {report['used_frames']} of {report['frames']} frames "
          f"({report['intervention_frames']} intervention) from {report['episodes']} episodes in "
          f"{report['seconds']} s: train rmse {report['train_rmse_rad']} rad, max {report['train_max_err_rad']} rad")
    for s in report["skipped"]:
        print(f"  skipped {s['episode']}: {s['reason']}")
    print(f"model written to {report['model']}; serve it with "
          f"`teleop policy serve --policy bc --option model={report['model']}`")
    return 0


def cmd_policy_serve(args: argparse.Namespace) -> int:
    import logging

    from teleop.policy.base import load_policy
    from teleop.policy.server import PolicyServer

    policy = load_policy(args.policy, parse_options(args.option))
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop.set()

    log = logging.getLogger("teleop")
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with PolicyServer(policy, args.endpoint, keys=_keys(args.keys)) as server:
            log.info("serving policy %s on %s", json.dumps(policy.info()), args.endpoint)
            stats = server.serve(args.seconds, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("policy server stopped: %s", json.dumps(stats))
    print(json.dumps(stats))
    return 0


def cmd_policy_info(args: argparse.Namespace) -> int:
    from teleop.bus import Bus, Reply, Request
    from teleop.errors import LinkTimeoutError

    with Bus("policy-info", keys=_keys(args.keys)) as bus:
        client = bus.rpc_client(args.endpoint, timeout_s=args.timeout)
        try:
            info = client.call(Request(op="info"))
            stats = client.call(Request(op="stats"))
        except LinkTimeoutError:
            raise TeleopError(f"no policy server answered at {args.endpoint} within {args.timeout} s; start one with "
                              "`teleop policy serve --policy NAME`") from None
    if not isinstance(info, Reply) or not info.ok:
        raise TeleopError(f"{args.endpoint} answered info with {getattr(info, 'error', info.KIND)}")
    out = {"endpoint": args.endpoint, **info.values,
           "stats": stats.values if isinstance(stats, Reply) and stats.ok else {}}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['name']} at {args.endpoint}: {out['n_joints'] or 'any'} joints, chunk {out['chunk']} rows "
              f"{out['dt_s']} s apart")
        for key, value in out.items():
            if key not in ("endpoint", "name", "n_joints", "chunk", "dt_s", "stats"):
                print(f"  {key}: {value}")
        if out["stats"]:
            print("  stats: " + ", ".join(f"{k} {v}" for k, v in out["stats"].items()))
    return 0
