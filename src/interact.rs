//! Everything a flow needs from the person at the keyboard: messages, the browser, typed input.
//! Injected so tests and `demo` can stand in for the person; the terminal version never prompts without a TTY.

use crate::error::{Error, Result};
use crate::secret::Secret;
use std::io::{BufRead, IsTerminal, Write};

/// The person at the keyboard, injectable: a terminal in production, a script in tests.
pub trait Interaction {
    /// True when a person can answer prompts (stdin and stderr are terminals).
    fn can_prompt(&self) -> bool;
    /// A progress or result line for the person (stderr).
    fn info(&mut self, message: &str);
    /// Shows a warning.
    fn warn(&mut self, message: &str);
    /// Detail shown at `-v` and above; never pass a secret.
    fn debug(&mut self, level: u8, message: &str);
    /// False when `debug(level, ..)` would show nothing: callers then skip building the message
    /// (a library client's requests pay for no URL redaction nobody reads).
    fn shows_debug(&self, _level: u8) -> bool {
        true
    }
    /// Opens `url` in a browser; an `Err` is reported as a warning by the caller.
    fn open_browser(&mut self, url: &str) -> std::result::Result<(), String>;
    /// Reads one line from stdin (a pipe is fine); `None` at end of input.
    fn read_line(&mut self, prompt: &str) -> Result<Option<String>>;
    /// `read_line` that gives up (`None`) as soon as `done()` turns true, for a paste that races
    /// another source (the sign-in listener). The default waits for the line.
    fn read_line_or(&mut self, prompt: &str, _done: &dyn Fn() -> bool) -> Result<Option<String>> {
        self.read_line(prompt)
    }
    /// Reads a hidden value from the terminal; `None` when no person can answer.
    fn read_secret(&mut self, prompt: &str) -> Result<Option<Secret>>;
    /// A waiting step (device-flow polling): `Some` shows or advances a spinner, `None` clears it.
    fn progress(&mut self, _message: Option<&str>) {}
}

/// The real terminal: stderr for messages, stdin for input.
#[derive(Clone)]
pub struct Terminal {
    /// How much debug output to show (`-v` count).
    pub verbosity: u8,
    color: bool,
    /// `AGE_OAUTH_BROWSER` as the environment had it.
    browser: Option<String>,
    spinner_frame: usize,
}

impl Terminal {
    /// A terminal interaction at this verbosity; `env` says whether to colour (`NO_COLOR`) and
    /// which browser to open (`AGE_OAUTH_BROWSER`).
    pub fn new(verbosity: u8, env: &crate::env::Env) -> Self {
        let color = env.get(&crate::env::NO_COLOR).is_none() && std::io::stderr().is_terminal();
        let browser = env.get(&crate::env::BROWSER).map(String::from);
        Terminal { verbosity, color, browser, spinner_frame: 0 }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

#[allow(clippy::print_stderr)] // the terminal: messages and prompts go to stderr
impl Interaction for Terminal {
    fn can_prompt(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }

    fn info(&mut self, message: &str) {
        eprintln!("{}", crate::redact::for_terminal(message));
    }

    fn warn(&mut self, message: &str) {
        eprintln!("{} {}", self.paint("33", "warning:"), crate::redact::for_terminal(message));
    }

    fn shows_debug(&self, level: u8) -> bool {
        self.verbosity >= level
    }

    fn debug(&mut self, level: u8, message: &str) {
        if self.shows_debug(level) {
            eprintln!("{} {}", self.paint("2", "debug:"), crate::redact::for_terminal(message));
        }
    }

    fn open_browser(&mut self, url: &str) -> std::result::Result<(), String> {
        launch_browser(url, self.browser.as_deref())
    }

    fn read_line(&mut self, prompt: &str) -> Result<Option<String>> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let n = std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::io("cannot read stdin", e))?;
        Ok((n > 0).then(|| line.trim().to_string()))
    }

    fn read_line_or(&mut self, prompt: &str, done: &dyn Fn() -> bool) -> Result<Option<String>> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let lines = stdin_lines().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if done() {
                eprintln!();
                return Ok(None);
            }
            match lines.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(Ok(line)) => return Ok(line.map(|l| l.trim().to_string())),
                Ok(Err(e)) => return Err(Error::io("cannot read stdin", e)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    fn read_secret(&mut self, prompt: &str) -> Result<Option<Secret>> {
        if !self.can_prompt() {
            return Ok(None);
        }
        let value = read_hidden(prompt).map_err(|e| Error::io("cannot read from the terminal", e))?;
        Ok(Some(Secret::new(value)))
    }

    fn progress(&mut self, message: Option<&str>) {
        // A spinner only on a terminal: in logs it would be noise.
        if !std::io::stderr().is_terminal() {
            return;
        }
        match message {
            Some(m) => {
                const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
                self.spinner_frame = (self.spinner_frame + 1) % FRAMES.len();
                eprint!("\r\x1b[K{} {m}", FRAMES[self.spinner_frame]);
            }
            None => eprint!("\r\x1b[K"),
        }
        let _ = std::io::stderr().flush();
    }
}

/// rpassword turns echo and signals off and, on Ctrl-C, raises SIGINT *before* it restores the
/// terminal: the default action would end the process and leave the person's shell without echo.
/// So SIGINT is ignored while it reads; once the terminal is back, Ctrl-C ends the process as usual.
#[cfg(unix)]
#[allow(clippy::print_stderr)] // the terminal: the line Ctrl-C interrupted is ended on stderr
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    // SAFETY: plain sigaction calls with zeroed/saved structs; no handler code runs in signal context.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    let mut ignore: libc::sigaction = unsafe { std::mem::zeroed() };
    ignore.sa_sigaction = libc::SIG_IGN;
    let swapped = unsafe { libc::sigaction(libc::SIGINT, &ignore, &mut previous) } == 0;
    let read = rpassword::prompt_password(prompt);
    if swapped {
        unsafe { libc::sigaction(libc::SIGINT, &previous, std::ptr::null_mut()) };
    }
    if matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::Interrupted) {
        eprintln!();
        // SAFETY: raising a signal at ourselves; under the default action the process ends here.
        unsafe { libc::raise(libc::SIGINT) };
    }
    read
}

#[cfg(not(unix))]
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}

type StdinLine = std::io::Result<Option<String>>;

/// Lines of stdin read on one thread for the whole process, so a wait for a paste can stop
/// without a read left half-done (a blocked read of stdin cannot be cancelled portably).
fn stdin_lines() -> &'static std::sync::Mutex<std::sync::mpsc::Receiver<StdinLine>> {
    static LINES: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Receiver<StdinLine>>> =
        std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || loop {
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line);
            let end = !matches!(read, Ok(n) if n > 0);
            if tx.send(read.map(|n| (n > 0).then_some(line))).is_err() || end {
                return;
            }
        });
        std::sync::Mutex::new(rx)
    })
}

/// Opens a URL with `custom` (`AGE_OAUTH_BROWSER`: a command; `none` disables), else the platform opener.
pub fn launch_browser(url: &str, custom: Option<&str>) -> std::result::Result<(), String> {
    let (program, mut args): (String, Vec<String>) = match custom {
        Some("none") => return Err("AGE_OAUTH_BROWSER=none".into()),
        Some(cmd) => {
            let mut parts = cmd.split_whitespace().map(String::from);
            let program = parts.next().unwrap_or_default();
            (program, parts.collect())
        }
        None if cfg!(target_os = "macos") => ("open".into(), vec![]),
        None if cfg!(windows) => ("rundll32".into(), vec!["url.dll,FileProtocolHandler".into()]),
        None => ("xdg-open".into(), vec![]),
    };
    args.push(url.to_string());
    std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("could not start `{program}`: {e}"))
}
