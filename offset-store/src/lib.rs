//! # rmq-offset-store
//!
//! Where a queue resumes: the `OffsetStore` trait, `LocalFileOffsetStore` and
//! `RemoteBrokerOffsetStore`.
//!
//! Status: not written yet (issue 4). This crate currently exports nothing.
