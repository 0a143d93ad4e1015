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

BUILD=DIR selects the build directory the qtests run from (default
$WORK/qemu/build; a relative name is taken below the tree).  TREE=DIR
takes another tree than $WORK/qemu, CHECK_LOGDIR=DIR another log
directory; --qtests-only runs the qtests alone (make check-series).

--sanitizers (make check-sanitizers, with BUILD=build-san, an ASan+UBSan
build): runs the qtests only (the other checks do not depend on the
build), logs to $WORK/check-san/, and gives every test case its own
sanitizer log directory (log_path, inherited by the QEMU processes the
qtest starts).  Each AddressSanitizer error, LeakSanitizer leak and UBSan
runtime error found there is printed on a "check: sanitizer:" line and
counted as a failure, in the QEMU process or in the qtest process.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", os.path.join(HERE, "_work"))
TREE = os.environ.get("TREE") or os.path.join(WORK, "qemu")
BUILD = os.path.join(TREE, os.environ.get("BUILD") or "build")
SANITIZE = "--sanitizers" in sys.argv[1:]
QTESTS_ONLY = SANITIZE or "--qtests-only" in sys.argv[1:]
LOGDIR = (os.environ.get("CHECK_LOGDIR") or
          os.path.join(WORK, "check-san" if SANITIZE else "check"))
LSAN_SUPP = os.path.join(HERE, "scripts", "lsan.supp")
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
    """Run @cmd; return (rc, stdout, stderr, log, seconds, pid).

    stdout and stderr are kept apart: a qtest's TAP stream is its stdout,
    while QEMU's own messages reach its stderr, sometimes without a
    newline, and must not be parsed as TAP.  The log has both.
    """
    log = os.path.join(LOGDIR, re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".log")
    start = time.monotonic()

    def text(b):
        b = b or b""
        return b.decode(errors="replace") if isinstance(b, bytes) else b

    with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL) as p:
        try:
            out, err = p.communicate(timeout=timeout)
            out, err, rc = text(out), text(err), p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            out, err = text(out), text(err)
            err += f"\ntimed out after {timeout} s\n"
            rc = None
    with open(log, "w") as f:
        f.write(out)
        if err:
            f.write("\n--- stderr ---\n" + err)
    return rc, out, err, log, time.monotonic() - start, p.pid


def script_check(name, cmd, timeout=600):
    rc, out, err, log, _, _ = run_logged(name, cmd, timeout)
    if rc == 0:
        record(name, "pass")
    else:
        last = [l for l in (out + err).strip().splitlines() if l.strip()][-1:]
        record(name, "fail", f"{last[0] if last else 'no output'}; log {log}")


def san_dir(name):
    """A fresh sanitizer log directory for one run of a qtest binary."""
    d = os.path.join(LOGDIR, "san",
                     re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_"))
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    return d


def qtest_env(sandir=None):
    env = dict(os.environ)
    env.setdefault("QTEST_QEMU_BINARY", "./qemu-system-x86_64")
    if sandir:
        # One log_path for all three runtimes: every process (the qtest
        # and each QEMU it starts, which inherit the environment) writes
        # its reports to sandir/report.<pid>.  exitcode=0: reports are
        # collected from these files, not from exit statuses, so a leak
        # found at QEMU's exit does not also make libqtest abort and hide
        # the test's own result.  UBSan stops at its first error.
        logp = os.path.join(sandir, "report")
        env["ASAN_OPTIONS"] = ":".join([
            f"log_path={logp}", "detect_leaks=1", "exitcode=0",
            "print_summary=1"])
        env["LSAN_OPTIONS"] = ":".join([
            f"log_path={logp}", f"suppressions={LSAN_SUPP}",
            "print_suppressions=0", "exitcode=0"])
        env["UBSAN_OPTIONS"] = ":".join([
            f"log_path={logp}", "halt_on_error=1", "print_stacktrace=1",
            "print_summary=1", "report_error_type=1", "exitcode=0"])
    return env


# --- sanitizer reports -------------------------------------------------

san_reports = []    # (case, process, kind, what, frame, ours, file)

_OURS = None


def our_files():
    """{tree-relative path: why it may be ours} for the overlay files and
    the files our patches change (001, the +ds build fixup, aside); for a
    patched file, whether the line itself is ours needs a look."""
    global _OURS
    if _OURS is None:
        _OURS = {}
        pdir = os.path.join(HERE, "patches")
        for p in sorted(os.listdir(pdir)):
            if not p.endswith(".patch") or p.startswith("0"):
                continue
            with open(os.path.join(pdir, p), errors="replace") as f:
                for l in f:
                    m = re.match(r"^\+\+\+ [^/\s]+/(\S+)", l)
                    if m:
                        _OURS.setdefault(m.group(1), []).append(p[:3])
        for f, ps in _OURS.items():
            _OURS[f] = "upstream file patched by " + ",".join(ps)
        for d in ("migration", "tests/qtest"):
            for root, _, files in os.walk(os.path.join(HERE, d)):
                for f in files:
                    rel = os.path.relpath(os.path.join(root, f), HERE)
                    _OURS[rel] = "overlay file"
    return _OURS


def frame_file(frame):
    """The tree-relative source file of a '#N 0x... in func file:line'."""
    m = re.search(r" in \S+ (\S+?):\d+", frame)
    if not m:
        return None
    path = m.group(1)
    if path.startswith(TREE + "/"):
        return path[len(TREE) + 1:]
    while path.startswith("../"):
        path = path[3:]
    return path


def short_frame(frame):
    m = re.match(r"\s*#\d+ 0x[0-9a-f]+ in (\S+) (\S+)", frame)
    if not m:
        return frame.strip()
    path = m.group(2)
    rel = frame_file(frame)
    return f"{m.group(1)} {rel + path[path.rfind(':'):] if rel else path}"


def interesting(frames):
    """The first frame that is not the sanitizer runtime or libc/glib."""
    for fr in frames:
        if re.search(r"libasan|libubsan|libc\.so|libglib|__interceptor_|"
                     r"__asan_|__ubsan_|in (malloc|calloc|realloc|free|"
                     r"strdup|operator)\b", fr):
            continue
        return fr
    return frames[0] if frames else ""


def first_ours(frames):
    qapi = [os.path.splitext(f)[0] for f in os.listdir(os.path.join(HERE,
                                                                     "qapi"))]
    for fr in frames:
        rel = frame_file(fr)
        if rel and rel in our_files():
            return f"{short_frame(fr)} ({our_files()[rel]})"
        if rel and rel.startswith("qapi/") and \
                any(q in rel for q in qapi):
            return f"{short_frame(fr)} (generated from our qapi/)"
    return ""


# Notes the runtimes print that are not reports.  QEMU's coroutines
# switch stacks with swapcontext (annotated for ASan since QEMU 5.1,
# CONFIG_ASAN_IFACE_FIBER), and GCC's ASan warns about it once per process.
BENIGN = re.compile(r"^==\d+==WARNING: ASan doesn't fully support "
                    r"makecontext/swapcontext functions")


def parse_reports(lines, whole_file=True):
    """[(kind, what, frames)] found in the lines of a sanitizer log file,
    or (whole_file False) in a process's stderr."""
    lines = [l for l in lines if not BENIGN.match(l)]
    reps = []
    cur = None
    for l in lines:
        m = re.match(r"^==\d+==ERROR: AddressSanitizer: (.*)", l)
        if m:
            cur = ["asan", re.sub(r" at pc 0x.*", "", m.group(1).strip()),
                   []]
            reps.append(cur)
            continue
        m = re.match(r"^(Direct|Indirect) leak of (.*)", l)
        if m:
            what = m.group(2).replace(" allocated from:", "")
            cur = ["leak", f"{m.group(1).lower()} leak of {what}", []]
            reps.append(cur)
            continue
        m = re.search(r"([\w./+-]+?\.(?:c|h|inc|cc|cpp):\d+:\d+): "
                      r"runtime error: (.*)", l)
        if m:
            where = re.sub(r"^(\.\./)+", "", m.group(1))
            cur = ["ubsan", f"{m.group(2).strip()} at {where}", []]
            reps.append(cur)
            continue
        if re.match(r"^==\d+==ERROR: LeakSanitizer", l) or \
           l.startswith("SUMMARY:"):
            cur = None
            continue
        if cur is not None and re.match(r"^\s+#\d+ ", l):
            cur[2].append(l)
        elif cur is not None and cur[0] == "asan" and cur[2] and \
                not l.strip():
            cur = None          # the access stack ends the first block
    # a report file that is not empty but has none of the above
    if whole_file and not reps and any(l.strip() for l in lines):
        first = next(l for l in lines if l.strip())
        reps.append(["other", first.strip()[:200], []])
    return [tuple(r) for r in reps]


def which_process(frames):
    """qtest or QEMU, for a report without a pid (UBSan on stderr)."""
    files = [frame_file(fr) or "" for fr in frames]
    return "qtest" if any(f.startswith("tests/qtest/") for f in files) \
        else "QEMU"


def collect_reports(case, sandir, qtest_pid, stderr="", log=None):
    """Print and count the reports in sandir/report.<pid> and in the
    stderr of the qtest (which QEMU inherits): with ASan, GCC's UBSan
    runtime ignores log_path and reports on stderr."""
    found = []
    for fn in sorted(os.listdir(sandir)):
        path = os.path.join(sandir, fn)
        m = re.search(r"\.(\d+)$", fn)
        proc = "qtest" if m and int(m.group(1)) == qtest_pid else "QEMU"
        with open(path, errors="replace") as f:
            for r in parse_reports(f.read().splitlines()):
                found.append((r, proc, path))
    for r in parse_reports(stderr.splitlines(), whole_file=False):
        found.append((r, which_process(r[2]), log or "stderr"))
    n = 0
    for (kind, what, frames), proc, path in found:
        top = short_frame(interesting(frames)) if frames else ""
        ours = first_ours(frames)
        san_reports.append((case, proc, kind, what, top, ours, path))
        line = f"check: sanitizer: {kind} in the {proc} process: {what}"
        if top:
            line += f"; at {top}"
        if ours:
            line += f"; first frame in our code: {ours}"
        print(line + f"; log {path}", flush=True)
        n += 1
    return n


def qtest_cases(binary):
    sandir = san_dir(os.path.basename(binary) + "-list") if SANITIZE else None
    with subprocess.Popen([binary, "-l"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env=qtest_env(sandir), cwd=BUILD) as p:
        out, err = p.communicate()
    sys.stderr.write(err)
    cases = [l.strip() for l in out.splitlines() if l.startswith("/")]
    if p.returncode != 0 or not cases:
        record(os.path.basename(binary), "fail",
               f"listing its tests failed (exit status {p.returncode})")
    if sandir and collect_reports(os.path.basename(binary) + " -l", sandir,
                                  p.pid, err):
        record(os.path.basename(binary) + " -l", "fail",
               "sanitizer reports while listing its tests")
    return cases


def run_qtest_case(binary, case):
    sandir = san_dir(case) if SANITIZE else None
    rc, out, err, log, secs, pid = run_logged(
        case, [binary, "--tap", "-k", "-p", case], CASE_TIMEOUT,
        env=qtest_env(sandir), cwd=BUILD)
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
    if sandir:
        n = collect_reports(case, sandir, pid, err, log)
        if n:
            record(f"sanitizers: {case}", "fail",
                   f"{n} sanitizer report{'s' if n > 1 else ''} in {sandir}")


def main():
    os.makedirs(LOGDIR, exist_ok=True)
    start = time.monotonic()
    qtests = [a for a in sys.argv[1:] if not a.startswith("--")]
    if SANITIZE:
        print(f"check: sanitizers: qtests only, from {BUILD}; sanitizer logs"
              f" in {LOGDIR}/san", flush=True)
        if not os.path.exists(os.path.join(BUILD, "qemu-system-x86_64")):
            print(f"check: no qemu-system-x86_64 in {BUILD}")
            return 1

    if not QTESTS_ONLY:
        run_script_checks()

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
    if SANITIZE:
        kinds = {}
        for r in san_reports:
            kinds[r[2]] = kinds.get(r[2], 0) + 1
        print(f"check: {len(san_reports)} sanitizer reports"
              + (" (" + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
                 + ")" if kinds else ""))
    print(f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped")
    return 1 if failed else 0


def run_script_checks():
    script_check("series: make series reproduces the assembled tree",
                 [os.path.join(HERE, "scripts/export-series.sh"), "--verify"])
    script_check("checkpatch: patches and overlay files are clean",
                 [os.path.join(HERE, "scripts/checkpatch.sh")])
    script_check("guest: dirty-guest-sector.h matches dirty-guest.S",
                 ["make", "-s", "-C",
                  os.path.join(HERE, "tests/qtest/migration/dirty-guest"),
                  "check", "clean"])


if __name__ == "__main__":
    sys.exit(main())
