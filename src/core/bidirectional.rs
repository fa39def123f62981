//! Bidirectional: placeholder replaced below.
