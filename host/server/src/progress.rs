//! Progress on long commands (`weft eval`, `weft plugin build`, `weft
//! replay`, `weft prune`, `weft bench`): a bar, or a spinner with the time
//! spent when the amount of work is not known, drawn on stderr when it is
//! a terminal. Off a terminal (CI logs, pipes) nothing is drawn and the
//! lines a command reports go to stderr as plain lines, so logs stay
//! readable and stdout stays the command's output.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner redraws.
const TICK: Duration = Duration::from_millis(120);

/// One long piece of work shown on stderr; cleared when dropped.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `len` steps of `what` (for example `eval` over 40 questions).
    pub fn bar(len: u64, what: &str) -> Self {
        Self::bar_on(ProgressDrawTarget::stderr(), len, what)
    }

    fn bar_on(target: ProgressDrawTarget, len: u64, what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len}  {elapsed} (eta {eta})  {wide_msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        Self { bar }
    }

    /// Work of unknown length: a spinner saying what is being done and for
    /// how long.
    pub fn spinner(what: impl Into<Cow<'static, str>>) -> Self {
        Self::spinner_on(ProgressDrawTarget::stderr(), what)
    }

    fn spinner_on(target: ProgressDrawTarget, what: impl Into<Cow<'static, str>>) -> Self {
        let bar = ProgressBar::with_draw_target(None, target);
        let style = ProgressStyle::with_template("{spinner} {msg}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(what);
        if !bar.is_hidden() {
            bar.enable_steady_tick(TICK);
        }
        Self { bar }
    }

    /// Whether anything is drawn (stderr is a terminal).
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// A line for the record: above the bar on a terminal, a plain line on
    /// stderr otherwise.
    pub fn line(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// One step done; `now` says what comes next (shown beside the bar).
    pub fn step(&self, now: impl Into<Cow<'static, str>>) {
        self.bar.inc(1);
        self.bar.set_message(now);
    }

    /// What is being done now (shown beside the bar or the spinner).
    pub fn doing(&self, now: impl Into<Cow<'static, str>>) {
        self.bar.set_message(now);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The steps of a plugin build, as lines above a spinner.
impl weft_build::Progress for Progress {
    fn step(&self, text: &str) {
        self.line(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_nothing_is_drawn_and_steps_still_count() {
        let progress = Progress::bar_on(ProgressDrawTarget::hidden(), 3, "test");
        assert!(!progress.is_drawn());
        progress.step("one");
        progress.step("two");
        assert_eq!(progress.bar.position(), 2);
        assert_eq!(progress.bar.message(), "two");
        progress.line("a line for the record");
        let spinner = Progress::spinner_on(ProgressDrawTarget::hidden(), "waiting");
        assert!(!spinner.is_drawn());
        spinner.doing("still waiting");
        assert_eq!(spinner.bar.message(), "still waiting");
    }
}
