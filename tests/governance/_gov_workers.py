"""Child processes for the multi-process and SIGKILL tests (run as a script, not collected by pytest).

Usage: python _gov_workers.py KIND PATH N TAG
  KIND: ledger | audit | jsonl | slow-jsonl
  PATH: the SQLite file or the .jsonl log; N: records to write (0 = until killed); TAG: the writer's name.
Prints "ready" once the store is open, so the parent can time a kill after writing has begun.
"""

from __future__ import annotations

import itertools
import os
import sys
import time


def main() -> None:
    kind, path, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    from parsimon.governance import JsonlAuditLog, get_audit_log, get_ledger
    from parsimon.governance.chain import body_text, line_for, sha256_hex, utc_now

    counter = range(n) if n > 0 else itertools.count()
    if kind == "ledger":
        ledger = get_ledger(path)
        ledger.count()
        print("ready", flush=True)
        for i in counter:
            ledger.charge(component=tag, tokens_in=1, money=0.001, run=f"run-{tag}", meta={"i": i})
    elif kind in ("audit", "jsonl"):
        log = get_audit_log(path)
        log.head()
        print("ready", flush=True)
        for i in counter:
            log.append(actor=tag, action="step", target=f"t{i}", args={"i": i, "tag": tag}, outcome="ok")
    elif kind == "slow-jsonl":
        # A writer on a slow device: each line reaches the file in two writes, so a kill between them
        # leaves a torn final line, as a power cut or a full disk would.
        log = JsonlAuditLog(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        print("ready", flush=True)
        for i in counter:
            head = log.head()
            body = body_text(head.n, utc_now(), None, tag, "step", f"t{i}", f'{{"i":{i}}}', None, None, "ok",
                             head.hash)
            line = line_for(body, sha256_hex(body))
            os.write(fd, line[: len(line) // 2])
            time.sleep(0.002)
            os.write(fd, line[len(line) // 2:])
    else:
        raise SystemExit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main()
