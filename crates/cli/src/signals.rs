//! Ctrl-C and SIGTERM: the first one cancels the running statement and lets the runner record
//! the interrupted attempt and release the lock; a second one exits at once.

use std::sync::{Arc, Mutex};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use safeshift_driver::Canceller;
use safeshift_runner::{Interrupt, InterruptReason};

use crate::exit::Exit;
use crate::output::err;

/// Installed signal handling for one run.
pub struct Interrupts {
    canceller: Arc<Mutex<Option<Canceller>>>,
}

impl Interrupts {
    /// Starts listening; `interrupt` is the runner's.
    pub fn install(interrupt: Arc<Interrupt>) -> Interrupts {
        let canceller: Arc<Mutex<Option<Canceller>>> = Arc::new(Mutex::new(None));
        if let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) {
            let canceller = Arc::clone(&canceller);
            std::thread::spawn(move || {
                let mut signalled = false;
                for signal in signals.forever() {
                    if std::mem::replace(&mut signalled, true) {
                        err(
                            "interrupted again: exiting now; the server rolls back the open transaction",
                        );
                        std::process::exit(Exit::Interrupted as i32);
                    }
                    let reason = if signal == SIGTERM {
                        InterruptReason::Terminated
                    } else {
                        InterruptReason::CtrlC
                    };
                    let name = reason.to_string();
                    interrupt.request(reason);
                    err(format!(
                        "{name}: cancelling the running statement and recording the interrupted attempt (press again to exit at once)"
                    ));
                    if let Some(cancel) =
                        canceller.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
                    {
                        cancel();
                    }
                }
            });
        }
        Interrupts { canceller }
    }

    /// Sets the connection whose statement a signal cancels.
    pub fn cancel_with(&self, canceller: Canceller) {
        *self.canceller.lock().unwrap_or_else(|e| e.into_inner()) = Some(canceller);
    }
}
