//! The core's error type. The bindings map each variant to one Python exception.

use std::fmt;

/// Everything the core can reject. All checks run before any computation starts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// An array has the wrong shape (or count). `argument` names the caller's argument.
    #[error("{argument}: expected shape {expected}, received {received}")]
    Shape {
        /// The argument's name.
        argument: String,
        /// The shape it must have.
        expected: String,
        /// The shape it has.
        received: String,
    },
    /// A value is outside what the argument accepts.
    #[error("{argument}: expected {expected}, received {received}")]
    Value {
        /// The argument's name.
        argument: String,
        /// What it accepts.
        expected: String,
        /// What it was given.
        received: String,
    },
    /// The buffers a call needs cannot be allocated.
    #[error("cannot allocate {elements} elements for {what}")]
    Allocation {
        /// The buffer.
        what: &'static str,
        /// Its dimensions, `a x b x c`.
        elements: String,
    },
    /// The buffers a call needs together exceed the machine's memory (bytes).
    #[error("{what} needs {:.1} GiB, more than this machine's {:.1} GiB of memory", gib(*.needed), gib(*.available))]
    Memory {
        /// The call or array.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes of RAM.
        available: u64,
    },
    /// The GPU failed: a CUDA driver, cuBLAS or NVRTC error, or no usable GPU.
    #[error("GPU: {0}")]
    Device(String),
    /// The GPU has not enough free memory for the call's buffers.
    #[error("GPU: out of memory for {0}")]
    DeviceMemory(String),
    /// The caller raised the call's [`Cancel`](crate::core::cancel::Cancel) flag.
    #[error("the computation was cancelled")]
    Cancelled,
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Formats a shape as `(2, 3, 4)`, the way numpy prints it.
pub struct ShapeDisplay<'a>(pub &'a [usize]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() == 1 {
            write!(f, ",")?;
        }
        write!(f, ")")
    }
}

/// Fails with [`Error::Shape`] unless `received == expected`.
pub fn check_shape(argument: &str, expected: &[usize], received: &[usize]) -> Result<()> {
    if expected == received {
        Ok(())
    } else {
        Err(Error::Shape {
            argument: argument.to_string(),
            expected: ShapeDisplay(expected).to_string(),
            received: ShapeDisplay(received).to_string(),
        })
    }
}
