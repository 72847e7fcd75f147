//! Times commands side by side for `benches/peers.sh`, without a shell around any of them:
//! round r starts every command once, in turn (beginning with command r mod n), so a load that
//! comes and goes hits all alike and no command always follows the same one.
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
    // Round r starts with command r (mod n), so that no command always runs right after the
    // same other one, whose leftovers in the caches it would otherwise always pay for.
    let n = timed.len();
    for round in 0..args.rounds {
        for k in 0..n {
            let t = &mut timed[(round + k) % n];
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
