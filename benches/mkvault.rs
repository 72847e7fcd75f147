//! Writes a vault of N bench entries for `benches/peers.sh`, which times the real binary on it:
//! `cargo bench --bench mkvault -- --entries 100000 --kdf cheap --out PATH`.
//! Its passphrase is `support::PASS`; the entries are `support::name(0..N)`.

mod support;

use clap::Parser;
use jeton::kdf::KdfParams;
use jeton::store::Store;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// Number of entries.
    #[arg(long)]
    entries: usize,
    /// `default` (256 MiB, t=3, p=4) or `cheap` (8 MiB, t=1, p=1).
    #[arg(long, default_value = "cheap")]
    kdf: String,
    /// Where to write the vault; it must not exist.
    #[arg(long)]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let kdf = match args.kdf.as_str() {
        "default" => KdfParams::default(),
        "cheap" => support::CHEAP_KDF,
        other => {
            eprintln!("mkvault: --kdf must be default or cheap, not {other}");
            std::process::exit(2);
        }
    };
    let (bytes, _key) = support::build(args.entries, kdf);
    let store = Store::new(args.out.clone(), Duration::from_secs(10));
    let written = store
        .create_dir()
        .and_then(|()| store.lock())
        .and_then(|guard| store.create(&bytes, &guard));
    if let Err(e) = written {
        eprintln!("mkvault: {e}");
        std::process::exit(1);
    }
    println!(
        "{} entries, {} bytes: {}",
        args.entries,
        bytes.len(),
        args.out.display()
    );
}
