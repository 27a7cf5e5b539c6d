//! # rmq-rebalance
//!
//! Who owns which queue: the `AllocateMessageQueueStrategy` trait, the six Java strategies
//! and `RebalanceImpl`.
//!
//! Status: not written yet (issue 4). This crate currently exports nothing.
