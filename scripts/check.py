#!/usr/bin/python3
"""Run the series' tests and print one closing line: N passed, M failed.

Checks, in order:
  series      make series on the pristine base reproduces the assembled tree
  checkpatch  scripts/checkpatch.pl is clean on every patch and overlay file
  guest       the committed dirty-guest boot sector matches its assembly
  qtests      every test case of each qtest binary, one process per case so
              that one failing assertion cannot hide the others

Logs go to $WORK/check/.  Skipped tests are counted and named with their
reason.  Exit status 0 only if nothing failed.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", os.path.join(HERE, "_work"))
TREE = os.path.join(WORK, "qemu")
BUILD = os.path.join(TREE, "build")
LOGDIR = os.path.join(WORK, "check")
CASE_TIMEOUT = int(os.environ.get("QTEST_CASE_TIMEOUT", "300"))

results = []        # (name, "pass" | "fail" | "skip", detail)


def record(name, status, detail=""):
    results.append((name, status, detail))
    mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[status]
    line = f"check: {mark} {name}"
    if detail and status != "pass":
        line += f"  ({detail})"
    print(line, flush=True)


def run_logged(name, cmd, timeout, env=None, cwd=None):
    """Run @cmd; return (rc, stdout, stderr, log, seconds).

    stdout and stderr are kept apart: a qtest's TAP stream is its stdout,
    while QEMU's own messages reach its stderr, sometimes without a
    newline, and must not be parsed as TAP.  The log has both.
    """
    log = os.path.join(LOGDIR, re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".log")
    start = time.monotonic()

    def text(b):
        b = b or b""
        return b.decode(errors="replace") if isinstance(b, bytes) else b

    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL)
        out, err, rc = text(p.stdout), text(p.stderr), p.returncode
    except subprocess.TimeoutExpired as e:
        out, err = text(e.stdout), text(e.stderr)
        err += f"\ntimed out after {timeout} s\n"
        rc = None
    with open(log, "w") as f:
        f.write(out)
        if err:
            f.write("\n--- stderr ---\n" + err)
    return rc, out, err, log, time.monotonic() - start


def script_check(name, cmd, timeout=600):
    rc, out, err, log, _ = run_logged(name, cmd, timeout)
    if rc == 0:
        record(name, "pass")
    else:
        last = [l for l in (out + err).strip().splitlines() if l.strip()][-1:]
        record(name, "fail", f"{last[0] if last else 'no output'}; log {log}")


def qtest_env():
    env = dict(os.environ)
    env.setdefault("QTEST_QEMU_BINARY", "./qemu-system-x86_64")
    return env


def qtest_cases(binary):
    p = subprocess.run([binary, "-l"], stdout=subprocess.PIPE, text=True,
                       env=qtest_env(), cwd=BUILD)
    cases = [l.strip() for l in p.stdout.splitlines() if l.startswith("/")]
    if p.returncode != 0 or not cases:
        record(os.path.basename(binary), "fail",
               f"listing its tests failed (exit status {p.returncode})")
    return cases


def run_qtest_case(binary, case):
    rc, out, err, log, secs = run_logged(case,
                                         [binary, "--tap", "-k", "-p", case],
                                         CASE_TIMEOUT, env=qtest_env(),
                                         cwd=BUILD)
    status, detail = None, ""
    for line in out.splitlines():
        m = re.match(r"^(not ok|ok) \d+ (\S+)(?: # (SKIP|TODO)\s*(.*))?$",
                     line)
        if not m or m.group(2) != case:
            continue
        if m.group(1) == "not ok":
            status = "fail"
        elif m.group(3) == "SKIP":
            status, detail = "skip", m.group(4) or "skipped"
        else:
            status = "pass"
    if rc is None:
        status, detail = "fail", f"timed out after {CASE_TIMEOUT} s"
    elif rc != 0 or status is None:
        why = [l for l in (out + "\n" + err).splitlines()
               if "ERROR" in l or "Bail out" in l or "assert" in l]
        status = "fail"
        detail = (why[0] if why else f"exit status {rc}")[:200]
    if status == "fail":
        detail += f"; log {log}"
    elif status == "pass":
        detail = f"{secs:.1f} s"
    record(case, status, detail)


def main():
    os.makedirs(LOGDIR, exist_ok=True)
    start = time.monotonic()
    qtests = sys.argv[1:]

    script_check("series: make series reproduces the assembled tree",
                 [os.path.join(HERE, "scripts/export-series.sh"), "--verify"])
    script_check("checkpatch: patches and overlay files are clean",
                 [os.path.join(HERE, "scripts/checkpatch.sh")])
    script_check("guest: dirty-guest-sector.h matches dirty-guest.S",
                 ["make", "-s", "-C",
                  os.path.join(HERE, "tests/qtest/migration/dirty-guest"),
                  "check", "clean"])

    for t in qtests:
        binary = os.path.join(BUILD, "tests", "qtest", t)
        for case in qtest_cases(binary):
            run_qtest_case(binary, case)

    passed = sum(1 for r in results if r[1] == "pass")
    failed = [r for r in results if r[1] == "fail"]
    skipped = [r for r in results if r[1] == "skip"]
    print(f"check: {len(results)} tests in {time.monotonic() - start:.0f} s;"
          f" logs in {LOGDIR}")
    for name, _, why in skipped:
        print(f"check: skipped {name}: {why}")
    for name, _, why in failed:
        print(f"check: failed {name}: {why}")
    print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
