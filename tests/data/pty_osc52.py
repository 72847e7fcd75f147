"""Runs a command on a pseudo-terminal, its stdout sent to a file, and records the terminal.

usage: pty_osc52.py STDOUT_FILE UNTIL -- CMD [ARG]...
The command runs under a shell that stays (as a login shell would) after the command ends, so
the terminal outlives it for processes it left behind. Reads the terminal until the bytes UNTIL
(Python escapes such as \\x07 allowed) have appeared after the command ended, or 20 s, then
prints everything the terminal showed (with "EXIT:<code>" after the command) and exits 0.
"""
import os, pty, select, sys, time

out_file, until = sys.argv[1], sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
cmd = sys.argv[sys.argv.index("--") + 1:]

pid, fd = pty.fork()
if pid == 0:
    script = '"$@" > "$JETON_TEST_OUT"; echo "EXIT:$?"; exec sleep 60'
    os.environ["JETON_TEST_OUT"] = out_file
    os.execvp("sh", ["sh", "-c", script, "sh"] + cmd)

seen = b""
deadline = time.time() + 20
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    ended = seen.find(b"EXIT:")
    if ended >= 0 and until in seen[ended:]:
        break
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.stdout.buffer.write(seen)
