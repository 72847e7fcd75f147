//! Times commands side by side for `benches/peers.sh`, without a shell around any of them:
//! every round starts every command once, in an order that changes from round to round (see
//! `order`), so a load that comes and goes hits all alike and no command always follows the
//! same one.
//! Prints the median of each (with its interquartile range) and its ratio to the first.
//!
//! `cargo bench --bench interleave -- --rounds 31 LABEL 'CMD ARGS' LABEL 'CMD ARGS' ...`
//!
//! A command line is split on whitespace (no quoting); leading `NAME=value` words set the
//! command's environment, as in a shell. Every command starts directly (`posix_spawn`), with
//! stdin, stdout and stderr on /dev/null, and must exit 0: a run that fails stops the bench
//! rather than timing an error.

use clap::Parser;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Timed rounds (each command once per round, after one untimed run).
    #[arg(long, default_value_t = 11)]
    rounds: usize,
    /// Pairs of a label and a command line.
    #[arg(num_args = 2.., required = true, value_names = ["LABEL", "COMMAND"])]
    pairs: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Timed {
    label: String,
    command: Command,
    times: Vec<Duration>,
}

fn command(line: &str) -> Option<Command> {
    let mut words = line.split_whitespace().peekable();
    let mut env = Vec::new();
    while let Some((name, value)) = words.peek().and_then(|w| w.split_once('=')) {
        env.push((name, value));
        words.next();
    }
    let mut command = Command::new(words.next()?);
    command
        .args(words)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Some(command)
}

fn run(t: &mut Timed) -> Duration {
    let start = Instant::now();
    let status = t.command.status();
    let took = start.elapsed();
    match status {
        Ok(s) if s.success() => took,
        Ok(s) => fail(&format!("`{}` exited with {s}", t.label)),
        Err(e) => fail(&format!("`{}` did not start: {e}", t.label)),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("interleave: {message}");
    std::process::exit(1)
}

/// The value at fraction `q` of sorted `v` (nearest rank).
fn quantile(v: &[Duration], q: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i].as_secs_f64() * 1e3
}

/// The order of the commands in round `round`: the rows of a balanced Latin square (a Williams
/// design) and then of its mirror image, so that over every 2n rounds each command runs first
/// equally often and right after each other command equally often. A command therefore does not
/// always pay for the same predecessor's leftovers (in the caches, or a daemon still busy after
/// it: `pass` leaves gpg-agent working). Rotating one fixed order would not do: command k would
/// follow command k-1 in all but one round in n.
fn order(n: usize, round: usize) -> Vec<usize> {
    // First row 0, 1, n-1, 2, n-2, ...; row r adds r to each (mod n).
    let first = (0..n).map(|j| {
        if j % 2 == 1 {
            j.div_ceil(2)
        } else {
            (n - j / 2) % n
        }
    });
    let mut row: Vec<usize> = first.map(|c| (c + round) % n).collect();
    if (round / n) % 2 == 1 {
        row.reverse();
    }
    row
}

fn main() {
    let args = Args::parse();
    if args.pairs.len() % 2 != 0 || args.rounds == 0 {
        fail("give LABEL COMMAND pairs and at least one round");
    }
    let mut timed: Vec<Timed> = args
        .pairs
        .chunks(2)
        .map(|p| Timed {
            label: p[0].clone(),
            command: command(&p[1]).unwrap_or_else(|| fail(&format!("`{}`: no command", p[0]))),
            times: Vec::with_capacity(args.rounds),
        })
        .collect();
    for t in &mut timed {
        run(t);
    }
    let n = timed.len();
    for round in 0..args.rounds {
        for i in order(n, round) {
            let t = &mut timed[i];
            let took = run(t);
            t.times.push(took);
        }
    }
    let mut base = None;
    for t in &mut timed {
        t.times.sort();
        let median = quantile(&t.times, 0.5);
        let base = *base.get_or_insert(median);
        println!(
            "  {:<44} median {:>9.2} ms   ratio {:.2}   (middle half {:.2}-{:.2} ms)",
            t.label,
            median,
            median / base,
            quantile(&t.times, 0.25),
            quantile(&t.times, 0.75),
        );
    }
}
