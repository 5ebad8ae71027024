"""The child side of :mod:`parsimon.sandbox`: runs inside the sandbox, imports only the standard library.

Protocol (one worker runs at most one piece of code, then exits):

1. The parent starts ``python -I -B _sandbox_child.py RESULT_FD`` (under bubblewrap, or directly in the
   guarded fallback) and writes one JSON line on stdin: the set-up (modules to preload, limits,
   scratch and input folders, which guards to install).
2. The child imports the preloads and writes ``{"ready": true}`` on the result descriptor.
3. The parent writes the request line (code, payload, input file names). The child copies the inputs
   into the scratch folder, closes stdin, sets the rlimits, installs Landlock (fallback only), the
   seccomp filter and the audit hook, runs the code, and writes ``{"done": status, ...}``.

Guards, in the order installed:

* rlimits: CPU seconds, address space (size after the preloads + ``memory_mb``), file size, no core
  files, open files;
* Landlock (Linux ≥ 5.13, fallback only; under bubblewrap the mount namespace already hides the file
  system): read-only access to the Python installation and system libraries, read-write access to the
  scratch folder only, nothing else (the home directory and the governance store are unreachable);
* seccomp (Linux x86-64 / aarch64): creating sockets, starting processes (fork, vfork, clone without
  CLONE_THREAD, execve), signalling any process but itself, ptrace, namespaces and mounts, io_uring, bpf
  are refused with EPERM in the kernel, so ctypes, ``_socket`` or ``posix`` cannot get round them;
* a Python audit hook refusing the same from Python (the only guard where seccomp is unavailable).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import struct
import sys
import traceback

CODE_NAME = "<sandboxed code>"

# Syscall numbers per architecture: (audit arch, {name: nr}).
_X86_64 = (0xC000003E, {
    "socket": 41, "connect": 42, "socketpair": 53, "clone": 56, "fork": 57, "vfork": 58, "execve": 59,
    "kill": 62, "ptrace": 101, "tkill": 200, "tgkill": 234, "process_vm_readv": 310,
    "process_vm_writev": 311, "unshare": 272, "setns": 308, "mount": 165, "umount2": 166,
    "pivot_root": 155, "chroot": 161, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
    "request_key": 249, "userfaultfd": 323, "execveat": 322, "clone3": 435, "kexec_load": 246,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169,
})
_AARCH64 = (0xC00000B7, {
    "socket": 198, "connect": 203, "socketpair": 199, "clone": 220, "execve": 221, "kill": 129,
    "ptrace": 117, "tkill": 130, "tgkill": 131, "process_vm_readv": 270, "process_vm_writev": 271,
    "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280,
    "perf_event_open": 241, "keyctl": 219, "add_key": 217, "request_key": 218, "userfaultfd": 282,
    "execveat": 281, "clone3": 435, "kexec_load": 104, "init_module": 105, "finit_module": 273,
    "delete_module": 106, "reboot": 142,
})
_DENY = ("socket", "connect", "socketpair", "fork", "vfork", "execve", "execveat", "ptrace", "tkill",
         "process_vm_readv", "process_vm_writev", "unshare", "setns", "mount", "umount2", "pivot_root",
         "chroot", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
         "keyctl", "add_key", "request_key", "userfaultfd", "kexec_load", "init_module", "finit_module",
         "delete_module", "reboot")
_CLONE_THREAD = 0x00010000

# Classic BPF opcodes and seccomp return values.
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


def _ret_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _arch_table():
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return _X86_64
    if machine in ("aarch64", "arm64"):
        return _AARCH64
    return None


def seccomp_program(pid: int) -> list[tuple[int, int, int, int]] | None:
    """The filter as (code, jt, jf, k) instructions, or None on an architecture we have no table for."""
    table = _arch_table()
    if table is None:
        return None
    arch, nr = table
    eperm = _ret_errno(errno.EPERM)
    prog = [(_LD_ABS_W, 0, 0, 4)]  # seccomp_data.arch
    prog.append((_JEQ, 1, 0, arch))
    prog.append((_RET, 0, 0, _RET_KILL))
    prog.append((_LD_ABS_W, 0, 0, 0))  # seccomp_data.nr
    if arch == _X86_64[0]:  # the x32 ABI shares the arch value: refuse it outright
        prog.append((_JGE, 0, 1, 0x40000000))
        prog.append((_RET, 0, 0, _RET_KILL))
    for name in _DENY:
        if name in nr:
            prog.append((_JEQ, 0, 1, nr[name]))
            prog.append((_RET, 0, 0, eperm))
    # clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc fall back to clone.
    prog.append((_JEQ, 0, 1, nr["clone3"]))
    prog.append((_RET, 0, 0, _ret_errno(errno.ENOSYS)))
    # clone: threads only (CLONE_THREAD set); processes refused.
    prog.append((_JEQ, 0, 4, nr["clone"]))
    prog.append((_LD_ABS_W, 0, 0, 16))  # args[0], low 32 bits (little-endian)
    prog.append((_JSET, 1, 0, _CLONE_THREAD))
    prog.append((_RET, 0, 0, eperm))
    prog.append((_RET, 0, 0, _RET_ALLOW))
    # kill / tgkill: only to this process itself.
    for name in ("kill", "tgkill"):
        prog.append((_JEQ, 0, 4, nr[name]))
        prog.append((_LD_ABS_W, 0, 0, 16))
        prog.append((_JEQ, 1, 0, pid & 0xFFFFFFFF))
        prog.append((_RET, 0, 0, eperm))
        prog.append((_RET, 0, 0, _RET_ALLOW))
    prog.append((_RET, 0, 0, _RET_ALLOW))
    return prog


def install_seccomp() -> bool:
    """Install the filter on this process (and threads started later); False where unsupported."""
    if sys.platform != "linux":
        return False
    prog = seccomp_program(os.getpid())
    if prog is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return False
    return True


# Landlock (fallback file-system guard).
_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1, 2, 4, 8
_LL_DIR_WRITE = 0x10 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x1000  # remove / make
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14


def install_landlock(read_paths: list[str], write_paths: list[str]) -> bool:
    """Allow reading ``read_paths`` and reading/writing ``write_paths``; nothing else. False if unsupported."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return False
    handled = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_READ_DIR | _LL_DIR_WRITE
    if abi >= 2:
        handled |= _LL_REFER
    if abi >= 3:
        handled |= _LL_TRUNCATE
    attr = struct.pack("Q", handled)
    ruleset = libc.syscall(_LL_CREATE, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    file_read = _LL_EXECUTE | _LL_READ_FILE
    file_write = _LL_WRITE_FILE | (_LL_TRUNCATE if abi >= 3 else 0)
    ok = True
    for paths, writable in ((read_paths, False), (write_paths, True)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            is_dir = os.path.isdir(path)
            access = file_read | (_LL_READ_DIR if is_dir else 0)
            if writable:
                access |= file_write | ((_LL_DIR_WRITE | (_LL_REFER if abi >= 2 else 0)) if is_dir else 0)
            rule = struct.pack("=Qi", access & handled, fd)
            if libc.syscall(_LL_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0)) != 0:
                ok = False
            os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    if libc.syscall(_LL_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        return False
    os.close(ruleset)
    return ok


_BLOCKED_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill")


def _audit_hook(event: str, args: tuple) -> None:
    if event.startswith("socket.") or event in _BLOCKED_EVENTS:
        raise PermissionError(errno.EPERM, f"blocked in the sandbox ({event})")


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _set_limits(limits: dict) -> None:
    import resource
    import signal

    def setlim(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))

    # the limit counts from now: the worker's start-up (imports) is not the code's time
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = max(1, int(usage.ru_utime + usage.ru_stime + limits["cpu_s"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    setlim(resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20)
    setlim(resource.RLIMIT_CORE, 0)
    setlim(resource.RLIMIT_NOFILE, 256)
    if limits.get("memory_mb"):
        size = _vm_size() + (int(limits["memory_mb"]) << 20)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    # A write beyond the file-size limit then fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _format_exception(exc: BaseException) -> str:
    """The traceback from the sandboxed code on (the harness's own frames are noise to its author)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != CODE_NAME:
        tb = tb.tb_next
    if tb is None and not isinstance(exc, SyntaxError):
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _classify(exc: BaseException) -> str:
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, MemoryError):
            return "memory"
        if isinstance(chain, OSError) and chain.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return "disk"
        chain = chain.__cause__ or chain.__context__
    return "error"


def main() -> None:
    result_fd = int(sys.argv[1])
    out = os.fdopen(result_fd, "w", buffering=1, closefd=True)

    def send(obj: dict) -> None:
        out.write(json.dumps(obj, default=str) + "\n")
        out.flush()

    setup = json.loads(sys.stdin.readline())
    for mod in setup.get("preload", []):
        try:
            __import__(mod)
        except ImportError:
            pass
    import shutil  # noqa: F401 - before the limits: copying the inputs needs it

    send({"ready": True, "pid": os.getpid()})
    line = sys.stdin.readline()
    if not line:
        os._exit(0)
    req = json.loads(line)
    scratch, inputs = setup["scratch"], setup["input"]
    os.chdir(scratch)
    for name in req.get("files", []):
        src, dst = os.path.join(inputs, name), os.path.join(scratch, name)
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        shutil.copyfile(src, dst)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    guards = []
    _set_limits(req.get("limits") or setup["limits"])
    guards.append("rlimits")
    if setup.get("landlock"):
        if install_landlock(setup.get("read_paths", []), [scratch]):
            guards.append("landlock")
    if setup.get("seccomp", True) and install_seccomp():
        guards.append("seccomp")
    sys.addaudithook(_audit_hook)
    guards.append("audit-hook")
    send({"guards": guards})

    def report(obj: object) -> None:
        """Pass a JSON-serialisable object back to the caller (the last one is the result)."""
        send({"report": obj})

    glb = {"__name__": "__main__", "__builtins__": __builtins__, "report": report,
           "PAYLOAD": req.get("payload")}
    status, message = "ok", ""
    try:
        exec(compile(req["code"], CODE_NAME, "exec"), glb)  # noqa: S102 - sandboxed by design
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code != 0:
            status, message = "error", f"exited with status {code}"
    except BaseException as exc:  # noqa: BLE001 - everything the code raises is scored, never re-raised
        status = _classify(exc)
        message = f"{type(exc).__name__}: {exc}"
        try:
            sys.stderr.write(_format_exception(exc))
        except Exception:  # noqa: BLE001
            pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a full disk must not hide the status
        pass
    try:
        send({"done": status, "error": message[:4000]})
    except MemoryError:
        os._exit(3)
    os._exit(0)


if __name__ == "__main__":
    main()
