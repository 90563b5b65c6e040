//! A phone program driven through its console: commands written to its stdin, everything it
//! prints kept in a file to read back.
use crate::netns::{KillOnDrop, Netns};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Console {
    output: PathBuf,
    stdin: ChildStdin,
    _process: KillOnDrop,
}

impl Console {
    /// `program` in `ns` with its stdout and stderr line-buffered (stdbuf): written to a file,
    /// C stdio would hold a last line, such as a call's end, until more output comes.
    pub fn command(ns: &Netns, program: &str) -> Command {
        let mut cmd = ns.command("stdbuf");
        cmd.args(["-oL", "-eL", program]);
        cmd
    }

    /// Starts `cmd` with its stdout and stderr going to `output`; `what` names it in errors.
    pub fn start(mut cmd: Command, output: &Path, what: &str) -> Console {
        let log = std::fs::File::create(output).expect("console log");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let stdin = child.stdin.take().expect("console stdin");
        Console { output: output.to_path_buf(), stdin, _process: KillOnDrop(child) }
    }

    /// Writes one command line.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the console");
        self.stdin.flush().expect("flush the console");
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        std::fs::read(&self.output).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Waits until `needle` has been printed more than `before` times, at most `within`.
    pub fn wait_for(&self, needle: &str, before: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.text().matches(needle).count() > before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}
