//! The sequence passes on the CPU: forward over `(batch, time, features)` and
//! backpropagation through time, for every cell and option.
//!
//! Layout: inside, everything is time-major and in processing order (reversed when
//! `go_backwards`), so the input projection and the weight gradients are single products over
//! all `time · batch` rows ([`forward`], [`backward`]). The time loop itself runs on slices of
//! the batch, one task per slice for the whole sequence, with no barrier between steps
//! (`time_loop`); each cell's step is a `CellStep` (`steps`).

mod backward;
mod forward;
mod layout;
mod steps;
mod time_loop;

pub use backward::backward;
pub(crate) use backward::backward_sharing;
pub use forward::forward;
pub(crate) use forward::forward_sharing;
pub(crate) use steps::with_pair;
