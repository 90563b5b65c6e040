//! Q.921 (LAPD) for the PRI D-channel: frame codec and the data-link state machine.

mod frame;
mod link;
mod timer;

pub use frame::{Control, Frame, FrameError, Side, Supervisory, Unnumbered};
pub use link::{Config, Link, LinkError, LinkEvent, State};
pub use timer::Timer;

#[cfg(test)]
mod tests;
