//! The safeshift run, for the `safeshift` command and for applications that embed safeshift.

pub mod hooks;
