"""``automl-tl backbones``, ``strategies`` and ``plugins``: what is registered here."""

from __future__ import annotations

import json

from automl_tl.cli._common import EXIT_OK


def add_parsers(sub) -> None:
    """The ``backbones``, ``strategies`` and ``plugins`` commands."""
    p = sub.add_parser("backbones", help="list registered backbones",
                       description="List registered backbones: plugin, modality, size, blocks, "
                                   "and whether pretrained weights are available here.")
    p.add_argument("--modality", help="only this modality")
    p.add_argument("--filter", default="*", help="glob on the name, e.g. 'mobile*'")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("strategies", help="list registered transfer strategies",
                       description="List registered transfer strategies: name, the plugin that "
                                   "registered it, whether it moves backbone weights, and one line "
                                   "of description. Any of them may be given to --strategies.")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("plugins", help="list installed plugins with versions and hooks",
                       description="List the plugins loaded: the built-in ones and every package that "
                                   "declares an 'automl_tl' entry point, with its version and the hooks "
                                   "it implements (backbones, modalities, strategies, strategy rules). A "
                                   "plugin that fails to load is exit 3 naming it.")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_backbones(args) -> int:
    from automl_tl.errors import WeightsUnavailableError
    from automl_tl.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    rows = []
    for spec in pm.backbones.list(args.filter, modality=args.modality):
        try:
            w = spec.resolve_weights()
        except WeightsUnavailableError as exc:
            weights = {"weights_here": "no", "weights_status": "missing", "weights_location": None,
                       "weights_hint": str(exc)}
        else:
            status = "not needed" if w.kind == "none" else w.status
            weights = {"weights_here": w.kind, "weights_status": status,
                       "weights_location": None if w.kind == "none" else w.location}
        rows.append(spec.summary() | weights)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max([26] + [len(r["name"]) + 2 for r in rows])
    print(f"{'name':<{width}}{'modality':<10}{'plugin':<18}{'params':>9}{'blocks':>7}  {'fine-tune':<10}"
          f"{'weights':<11}from")
    for r in rows:
        where = {"user": "--weights / $AUTOML_TL_WEIGHTS_DIR", "package": "installed package",
                 "download": "download / local cache", "none": "-"}.get(r["weights_here"], r["weights_here"])
        if r["weights_location"] and r["weights_here"] != "none":
            where += f": {r['weights_location']}"
        if r["weights_status"] == "missing":
            where = "-"
        print(f"{r['name']:<{width}}{r['modality']:<10}{r['plugin']:<18}{r['n_params'] / 1e6:>8.1f}M"
              f"{r['n_blocks']:>7}  {'yes' if r['fine_tunable'] else 'no':<10}{r['weights_status']:<11}{where}")
    print("weights: real = pretrained, in the backbone's own format; converted = pretrained, "
          "translated from another framework's checkpoint when loaded; missing = not here "
          "(`automl-tl fit` says how to provide them)")
    return EXIT_OK


def cmd_strategies(args) -> int:
    from automl_tl.plugin_manager import get_plugin_manager

    reg = get_plugin_manager().strategies
    rows = [{"name": s.name, "plugin": reg.plugin_of(s.name), "fine_tunes": bool(s.fine_tunes),
             "description": s.description} for s in reg]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'name':<20}{'plugin':<24}{'fine-tunes':<12}description")
    for r in rows:
        print(f"{r['name']:<20}{r['plugin']:<24}{'yes' if r['fine_tunes'] else 'no':<12}{r['description']}")
    return EXIT_OK


def cmd_plugins(args) -> int:
    from automl_tl.plugin_manager import get_plugin_manager

    infos = get_plugin_manager().list_plugins()
    if args.json:
        print(json.dumps([i.__dict__ | {"hooks": list(i.hooks)} for i in infos], indent=2))
        return EXIT_OK
    for i in infos:
        kind = "built-in" if i.builtin else "third-party"
        print(f"{i.name:<24}{i.version:<12}{kind:<12}{', '.join(i.hooks)}")
    return EXIT_OK


COMMANDS = {"backbones": cmd_backbones, "strategies": cmd_strategies, "plugins": cmd_plugins}
