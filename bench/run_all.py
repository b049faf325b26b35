"""Run every benchmark (one after another: they share the portal_bench database) and sum up.

    .venv/bin/python bench/run_all.py [--quick]      # or: make bench

Each script prints its own table and writes bench/out/<name>.json; this prints the
commit under benchmark, the machine and the headline figures of all of them against
their targets. The README's figures are this summary of one run.
"""

import argparse
import json
import subprocess
import sys
import time

import common

SCRIPTS = ["ingest", "push", "dashboard"]


def summary_rows() -> list[list]:
    """The headline figures; a timing is the median of its runs, with the range in brackets."""
    rows = []
    ingest = json.loads((common.OUT / "ingest.json").read_text())
    big = ingest["sizes"][-1]
    rows.append(
        [
            f"ingest {big['rows']:,} rows: validate s + store s",
            f"{common.show(big['validate_s'], '.2f')} + {common.show(big['store_s'], '.2f')}",
            "",
            "",
        ]
    )
    rows.append([f"ingest {big['rows']:,} rows: portal rows/s", common.show(big["portal_rows_s"]), "", ""])
    rows.append(
        ["ingest: COPY into an empty table keyed (meter_id, ts), rows/s", common.show(big["copy_rows_s"]), "", ""]
    )
    rows.append(
        [
            "ingest: portal / COPY",
            common.show(big["ratio"], ".3f", "x"),
            f">= {ingest['target_ratio']}x",
            "met" if ingest["ratio_met"] else "MISSED",
        ]
    )
    rows.append(
        [
            "ingest: re-upload (every row a conflict), validate s + store s",
            f"{common.show(big['again_validate_s'], '.2f')} + {common.show(big['again_store_s'], '.2f')}",
            "",
            "",
        ]
    )
    growth = ", ".join(f"{r['rows']:,}: +{r['rss_growth_mb']:.0f}" for r in ingest["sizes"])
    rows.append(["ingest: peak RSS growth (MB)", growth, "< 100 MB", "met" if ingest["memory_bounded"] else "MISSED"])

    push = json.loads((common.OUT / "push.json").read_text())
    for name, rate in push["single_meter"]["packets_per_s"].items():
        rows.append([f"push {push['single_meter']['packets']:,} packets: {name} packets/s", common.show(rate), "", ""])
    for name, value in push["ratios"].items():
        rows.append(
            [
                f"push: {name}",
                common.show(value, ".2f", "x"),
                f">= {push['targets'][name]}x",
                "met" if push["met"][name] else "MISSED",
            ]
        )
    par = push["parallel"]
    rows.append(
        [
            f"push {par['meters']}x{par['packets_per_meter']} @ {par['latency_ms']} ms: serial / parallel s",
            f"{common.show(par['serial_s'], '.1f')} / {common.show(par['parallel_s'], '.1f')}",
            "",
            "",
        ]
    )

    many = push.get("many_streams")
    if many:
        cpu = many["cpu_ms_per_packet"]
        label = f"push {many['streams']}x{many['packets_per_stream']} @ {many['latency_ms']} ms"
        rows.append([f"{label}: packets/s", common.show(many["packets_per_s"]), "", ""])
        rows.append(
            [
                f"{label}: CPU ms/packet worker / raw client",
                f"{common.show(cpu['worker'], '.3f')} / {common.show(cpu['raw_client'], '.3f')}",
                "",
                "",
            ]
        )

    dash = json.loads((common.OUT / "dashboard.json").read_text())
    for page in dash["pages"]:
        rows.append(
            [
                f"page {page['page']}: ms ({page['queries']} queries)",
                f"{page['median_ms']} ({page['min_ms']}–{page['max_ms']})",
                f"< {dash['target_median_ms']:.0f}",
                "met" if page["met"] else "MISSED",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    code_under_test = common.commit()
    print(f"benchmarks of commit {code_under_test}", flush=True)
    failed = []
    for name in SCRIPTS:
        print(f"\n===== {name} =====", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, str(common.ROOT / "bench" / f"{name}.py")] + (["--quick"] if args.quick else [])
        code = subprocess.run(cmd, cwd=common.ROOT, timeout=3600, check=False).returncode
        print(f"({name}: {time.monotonic() - started:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)

    m = common.machine()
    print("\n===== summary =====")
    print(f"commit: {code_under_test}; each timing: median (lowest–highest) of {common.RUNS} runs")
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, load average now {m['load_average']}"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)} (their figures below are from an earlier run, if any)")
    try:
        print(common.table(["figure", "value", "target", ""], summary_rows()))
    except FileNotFoundError as exc:
        print(f"no summary: {exc}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
