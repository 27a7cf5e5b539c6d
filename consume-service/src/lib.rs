//! # rmq-consume-service
//!
//! `ProcessQueue`, the concurrent and orderly consume services and the listener traits.
//!
//! Status: not written yet (issue 5). This crate currently exports nothing.
