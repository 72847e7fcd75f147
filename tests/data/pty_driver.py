"""Runs a command under a pseudo-terminal and answers its prompts.

usage: pty_driver.py [--stdout FILE] PROMPT ANSWER [PROMPT ANSWER]... -- CMD [ARG]...
Prints everything the command wrote to the terminal, then exits with its exit code. With
--stdout, the command's standard output goes to FILE instead (stdin, stderr and /dev/tty stay
on the terminal), to tell its data from what it says to the user.
"""
import os, pty, select, sys, time

args = sys.argv[1:]
stdout_file = None
if args[:1] == ["--stdout"]:
    stdout_file, args = args[1], args[2:]
split = args.index("--")
pairs = list(zip(args[:split:2], args[1:split:2]))
cmd = args[split + 1:]

pid, fd = pty.fork()
if pid == 0:
    if stdout_file is not None:
        out_fd = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out_fd, 1)
        os.close(out_fd)
    os.execvp(cmd[0], cmd)

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

# Each prompt is looked for after the previous one, so one asked twice is answered twice.
pos = 0
for prompt, answer in pairs:
    deadline = time.time() + 20
    p = prompt.encode()
    while out.find(p, pos) < 0:
        if time.time() > deadline or read_some(0.5) is None:
            sys.stdout.write(out.decode(errors="replace"))
            sys.stderr.write(f"pty_driver: never saw prompt {prompt!r}\n")
            os.kill(pid, 9)
            sys.exit(99)
    i = out.find(p, pos)
    out = out[:i] + b"<" + p + b">" + out[i + len(p):]
    pos = i + len(p) + 2
    time.sleep(0.2)  # a person does not type before the prompt has turned echo off
    os.write(fd, answer.encode() + b"\r")

deadline = time.time() + 20
while time.time() < deadline and read_some(0.5) is not None:
    pass
# A command still waiting for input nobody gives (an unexpected prompt) is killed: the test
# fails instead of hanging.
grace = time.time() + 5
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > grace:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.stdout.write(out.decode(errors="replace"))
        sys.stderr.write("pty_driver: the command was still running; killed\n")
        sys.exit(98)
    time.sleep(0.05)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
