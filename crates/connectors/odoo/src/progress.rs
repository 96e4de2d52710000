//! Progress on stderr: one line per Odoo model, hidden when stderr is not a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<&'static str, ProgressBar>>,
}

impl Progress {
    /// Draws on stderr when `wanted` and stderr is a terminal; otherwise draws nothing.
    pub fn new(wanted: bool) -> Progress {
        let target = if wanted && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the line of `model`, creating it on first use.
    pub fn bar(&self, model: &'static str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(model)
            .or_insert_with(|| {
                let style =
                    ProgressStyle::with_template("{prefix:>30} {spinner} {pos:>6} rows {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = self.multi.add(ProgressBar::no_length());
                bar.set_style(style);
                bar.set_prefix(model);
                bar.set_message("reading");
                bar
            })
            .clone()
    }

    /// Replaces the message of `model`'s line.
    pub fn message(&self, model: &'static str, message: String) {
        self.bar(model).set_message(message);
    }

    /// Ends every line, keeping its last message on screen.
    pub fn finish(&self) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for bar in bars.values() {
            bar.finish();
        }
    }
}
