//! # rmq-pull-consumer
//!
//! The pull consumer (Java `DefaultMQPullConsumer`) and the lite pull consumer
//! (`DefaultLitePullConsumer`).
//!
//! Status: not written yet (issue 7). This crate currently exports nothing.
