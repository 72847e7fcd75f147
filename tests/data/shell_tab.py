"""Types command lines and TAB into an interactive shell in a pseudo-terminal, as a person does.

usage: shell_tab.py LINE TABS [LINE TABS]... -- SHELL [ARG]...
The shell's startup file must set the prompt to PROMPT (below) and bind Ctrl-X to print the
line being edited as BUF<...> on a line of its own. For each LINE, the driver types it, presses
TAB TABS times (waiting after each until the terminal is quiet), presses Ctrl-X, then clears
the line (Ctrl-E Ctrl-U). Prints a JSON list with, for each LINE, `line` (the line being edited
after the TABs) and `screen` (what the terminal showed meanwhile, escape sequences removed).
Exit 99 when the prompt or a BUF<...> never comes.
"""
import fcntl, json, os, pty, re, select, struct, sys, termios, time

PROMPT = b"jeton-test$ "

args = sys.argv[1:]
split = args.index("--")
lines = list(zip(args[:split:2], (int(n) for n in args[1:split:2])))
cmd = args[split + 1:]

pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))

out = b""


def read_some(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    out += data
    return True


def wait_for(pattern, start, seconds=30):
    deadline = time.time() + seconds
    while True:
        m = re.compile(pattern, re.S).search(out, start)
        if m:
            return m
        if time.time() > deadline or read_some(0.2) is None:
            return None


def quiet(seconds):
    """Reads until nothing came for `seconds` (at most 30 s in all)."""
    deadline = time.time() + 30
    while time.time() < deadline and read_some(seconds):
        pass


def fail(why):
    sys.stdout.write(out.decode(errors="replace"))
    sys.stderr.write(f"shell_tab: {why}\n")
    os.kill(pid, 9)
    sys.exit(99)


def text(raw):
    s = raw.decode(errors="replace")
    # Escape sequences (colours, cursor moves, title) and carriage returns are not text.
    return re.sub(
        r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?|\r",
        "",
        s,
    )


if not wait_for(re.escape(PROMPT), 0):
    fail("never saw the prompt")
quiet(0.5)
results = []
for line, tabs in lines:
    typed_at = len(out)
    os.write(fd, line.encode())
    quiet(0.3)
    for _ in range(tabs):
        os.write(fd, b"\t")
        quiet(0.7)
    shown_to = len(out)
    os.write(fd, b"\x18")
    m = wait_for(rb"BUF<(.*?)>\r?\n", shown_to)
    if not m:
        fail(f"Ctrl-X printed no BUF<...> after {line!r}")
    screen = text(out[typed_at:m.start()])
    results.append({"line": m.group(1).decode(errors="replace"), "screen": screen})
    os.write(fd, b"\x05\x15")
    quiet(0.3)
os.kill(pid, 9)
os.waitpid(pid, 0)
json.dump(results, sys.stdout)
