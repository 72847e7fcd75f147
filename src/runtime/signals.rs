//! What jeton does when told to stop while a file holding a secret exists ([`super::Scratch`]).
//!
//! Once the first scratch directory is made, a thread waits for SIGINT, SIGQUIT, SIGHUP and
//! SIGTERM (each one jeton did not start with ignored, as `nohup` leaves SIGHUP). On any of them
//! it wipes every scratch directory of the process, then lets the signal do what it would have
//! done without a handler (the process ends by that signal, as a shell expects). The one
//! exception, as git does around its editor: while a child that has the terminal runs
//! ([`Foreground`]), SIGINT and SIGQUIT (Ctrl-C, Ctrl-\) are the child's, and jeton lets them
//! pass. Handlers are reset by `exec`, so children start with the default actions.

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many [`Foreground`] guards are alive.
static FOREGROUND: AtomicUsize = AtomicUsize::new(0);

/// While alive, SIGINT and SIGQUIT leave jeton alone: they are for the child on the terminal
/// (the editor), which gets them too, as the terminal sends them to the whole foreground
/// process group.
pub struct Foreground(());

impl Foreground {
    /// Starts letting SIGINT and SIGQUIT pass, until dropped.
    pub fn start() -> Foreground {
        let _ = install();
        FOREGROUND.fetch_add(1, Ordering::SeqCst);
        Foreground(())
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        FOREGROUND.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installs the handlers and starts the thread, once per process.
pub(super) fn install() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let wanted: Vec<i32> = [SIGINT, SIGQUIT, SIGHUP, SIGTERM]
                .into_iter()
                .filter(|&s| !crate::os::signal_ignored(s))
                .collect();
            let mut signals =
                signal_hook::iterator::Signals::new(&wanted).map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("jeton-signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        if matches!(sig, SIGINT | SIGQUIT) && FOREGROUND.load(Ordering::SeqCst) > 0
                        {
                            continue;
                        }
                        super::scratch::wipe_all();
                        // Ends the process by `sig` (it aborts if that fails).
                        let _ = signal_hook::low_level::emulate_default_handler(sig);
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
}
