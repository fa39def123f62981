//! Stopping a running call from another thread (the bindings use it for Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A stop flag for a call. The time loops look at it once per step and return
/// [`Error::Cancelled`] once it is raised. The default token never fires.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Option<Arc<AtomicBool>>);

impl Cancel {
    /// A token that fires once [`Cancel::raise`] is called on it or on any of its clones.
    pub fn new() -> Self {
        Self(Some(Arc::default()))
    }

    /// Asks the calls holding this token (or a clone) to stop.
    pub fn raise(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// [`Error::Cancelled`] once the token is raised.
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Cancelled),
            _ => Ok(()),
        }
    }
}
